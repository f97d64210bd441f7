"""Retrieval metrics of `assistant eval`, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from assistant.evaluate import (
    _contains,
    doc_ranking,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
)

L2 = math.log2


def test_ndcg_binary():
    # relevant a, b; a at rank 1, b at rank 3: DCG = 1 + 1/log2(4) = 1.5, IDCG = 1 + 1/log2(3)
    got = ndcg_at_k(["a", "x", "b", "y"], {"a": 1, "b": 1})
    assert got == pytest.approx(1.5 / (1 + 1 / L2(3)))
    assert got == pytest.approx(0.919721, abs=1e-6)


def test_ndcg_graded_uses_linear_gains():
    # a has gain 2, b gain 1, ranked b then a: DCG = 1/1 + 2/log2(3), IDCG = 2/1 + 1/log2(3)
    got = ndcg_at_k(["b", "a"], {"a": 2, "b": 1})
    assert got == pytest.approx((1 + 2 / L2(3)) / (2 + 1 / L2(3)))
    assert got == pytest.approx(0.859719, abs=1e-6)
    assert ndcg_at_k(["a", "b"], {"a": 2, "b": 1}) == pytest.approx(1.0)


def test_ndcg_fewer_relevant_than_k():
    # one relevant document: the ideal list has one entry, not ten
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}) == pytest.approx(0.5)
    assert ndcg_at_k(["a"] + [f"x{i}" for i in range(20)], {"a": 1}) == pytest.approx(1.0)


def test_ndcg_cut_at_k_and_ideal_cut_at_k():
    ranked = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranked, {"a": 1}) == 0.0  # rank 11 does not count
    # twelve relevant documents, ten of them in the top ten: the ideal is also ten long
    rel = {f"r{i}": 1 for i in range(12)}
    assert ndcg_at_k([f"r{i}" for i in range(10)], rel) == pytest.approx(1.0)
    # zero-gain judgments are not relevant and do not enter the ideal
    assert ndcg_at_k(["z", "a"], {"a": 1, "z": 0}) == pytest.approx(1 / L2(3))
    assert ndcg_at_k(["a"], {}) == 0.0


def test_recall():
    gains = {"a": 1, "b": 2, "c": 1, "z": 0}
    ranked = ["a", "x", "b", "z"]
    assert recall_at_k(ranked, gains, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, gains, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, gains, 3) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, gains, 100) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "b", "c"], gains, 10) == 1.0


def test_mrr():
    assert mrr_at_k(["a"], {"a": 1}) == 1.0
    assert mrr_at_k(["x", "y", "z", "a", "b"], {"a": 1, "b": 1}) == 0.25
    assert mrr_at_k([f"x{i}" for i in range(10)] + ["a"], {"a": 1}) == 0.0  # rank 11
    assert mrr_at_k(["z", "a"], {"a": 1, "z": 0}) == 0.5


def test_percentile_interpolates_like_numpy():
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([7], 95) == 7
    assert percentile([], 50) == 0.0


def test_doc_ranking_keeps_first_occurrence():
    assert doc_ranking(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]
    assert doc_ranking([f"d{i}" for i in range(300)], depth=100) == [f"d{i}" for i in range(100)]


def test_load_beir_crlf_header_and_split(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "10", "title": "T", "text": "alpha"}\n{"_id": "11", "title": "", "text": "beta"}\n'
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "q one"}\n{"_id": "2", "text": "q two"}\n')
    (tmp_path / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\n1\t10\t2\r\n1\t11\t1\r\n")
    data = load_beir(tmp_path, "test")
    assert data.corpus == {"10": ("T", "alpha"), "11": ("", "beta")}
    assert data.queries == {"1": "q one"}  # only the queries judged in this split
    assert data.qrels == {"1": {"10": 2.0, "11": 1.0}}
    with pytest.raises(FileNotFoundError):
        load_beir(tmp_path, "train")


def test_answer_matching_ignores_case_and_thousands_commas():
    assert _contains("It costs EUR 1,249.", ["1249"])
    assert _contains("It costs EUR 1249.", ["1,249"])
    assert _contains("BOUNDARY signal lost", ["boundary signal"])
    assert not _contains("version 3,5", ["35"])  # a decimal comma is not a thousands separator
    assert not _contains("anything", [])


def test_qa_scoring_with_a_stub_library():
    from assistant.answer import NOT_FOUND
    from assistant.evaluate import evaluate_qa
    from assistant.types import Answer, Hit, Source

    def hit(path, text="text"):
        return Hit("c", path, text, 1.0)

    replies = {
        "What is the price?": ("It costs 1,249 EUR [1].", [Source(1, hit("/x/corpora/manual.md", "Price: 1,249 EUR"), True)], True),
        "And the colour?": ("Green [1].", [Source(1, hit("/x/corpora/other.md"), True)], True),
        "What is the weight?": ("It weighs 12.5 kg [1].", [Source(1, hit("/x/corpora/manual.md", "Weight: 11.8 kg, not 12.5"), False),
                                                          Source(2, hit("/x/corpora/manual.md", "Weight: 11.8 kg"), True)], True),
        "Who is the CFO?": (NOT_FOUND, [Source(1, hit("/x/corpora/manual.md"))], False),
        "When is 3.5 out?": ("Soon [1].", [Source(1, hit("/x/corpora/manual.md"), True)], True),
    }
    asked = []

    class StubLibrary:
        def ask(self, question, history=()):
            asked.append((question, [a.question for a in history]))
            text, sources, grounded = replies[question]
            return Answer(question, text, sources, {"first_token_s": 0.5, "total_s": 1.0}, "m", "e", grounded=grounded)

    items = [
        {"id": "a", "question": "What is the price?", "must_contain": ["1249"], "source_files": ["corpora/manual.md"]},
        {"id": "b", "question": "And the colour?", "follows": "a", "must_contain": ["green"],
         "must_not_contain": ["green"], "source_files": ["corpora/manual.md"]},
        {"id": "c", "question": "Who is the CFO?", "must_contain": [], "source_files": []},
        {"id": "d", "question": "When is 3.5 out?", "must_contain": [], "source_files": []},
        # 12.5 is in a passage, but not in the one the answer cites: unsupported, and not a right citation
        {"id": "e", "question": "What is the weight?", "must_contain": ["12.5"], "source_files": ["corpora/manual.md"]},
    ]
    res = evaluate_qa(StubLibrary(), items)
    assert asked[1] == ("And the colour?", ["What is the price?"])  # a follow-up is asked in its conversation
    assert [(r["id"], r["correct"], r["cited_ok"]) for r in res["results"]] == [
        ("a", True, True), ("b", False, False), ("c", True, None), ("d", False, None), ("e", True, False)]
    assert [r["unsupported"] for r in res["results"]] == [[], ["green"], [], ["soon"], ["12.5"]]  # names count too
    assert res["unsupported_rate"] == round(3 / 4, 4)  # of the four answers that are not refusals
    assert res["answer_accuracy"] == 0.6
    assert res["citation_accuracy"] == round(1 / 3, 4)
    assert res["refusal_accuracy"] == 0.5
    assert res["questions"] == 5 and res["total_p50_s"] == 1.0
    assert res["results"][0]["sources"] == [{"n": 1, "path": "/x/corpora/manual.md", "page": None, "start_line": None,
                                             "end_line": None, "cited": True}]
    assert set(res) == {"answer_accuracy", "citation_accuracy", "refusal_accuracy", "unsupported_rate", "by_kind",
                        "how", "first_token_p50_s", "total_p50_s", "questions", "results"}


def test_weighted_fusion_scales_by_best_and_fills_missing_with_the_cut():
    from assistant.retrieve import weighted

    dense = [("a", 0.8), ("b", 0.6), ("c", 0.4)]
    keyword = [("c", 12.0)]  # a lone keyword match keeps its full weight
    fused = dict(weighted([dense, keyword], [0.6, 0.4], [False, True]))
    assert fused["a"] == pytest.approx(0.6 * 1.0)  # keyword complete: missing there scores 0
    assert fused["b"] == pytest.approx(0.6 * 0.75)
    assert fused["c"] == pytest.approx(0.6 * 0.5 + 0.4 * 1.0)
    # a list cut at the candidate count: a chunk missing from it ranked below its last entry
    fused = dict(weighted([dense, [("c", 12.0), ("b", 6.0)]], [0.6, 0.4], [False, False]))
    assert fused["a"] == pytest.approx(0.6 * 1.0 + 0.4 * 0.5)
    assert [cid for cid, _ in weighted([[], keyword], [0.6, 0.4])] == ["c"]
