import random, threading, time, asyncio
import pytest
from test_tui import create_app, ConversationsScreen, MainScreen, HelpScreen, Input, make_library, wait_for, SIZE, tui_docs, tui_env, AnswerView, screen_text  # noqa
from assistant.testing import FakeGenerator
pytestmark = pytest.mark.anyio

@pytest.fixture
def anyio_backend():
    return "asyncio"

class RandomLoad(FakeGenerator):
    def __init__(self, delay):
        super().__init__(); self.delay = delay; self.loaded = False; self.lock = threading.Lock()
    def info(self):
        if not self.loaded:
            time.sleep(self.delay); self.loaded = True
        return super().info()
    def stream(self, request):
        for p in super().stream(request):
            time.sleep(random.random() * 0.01)
            yield p

@pytest.mark.parametrize("i", range(25))
async def test_stress(tui_docs, i):
    random.seed(i)
    lib = make_library(tui_docs)
    lib.ingest()
    conv = lib.conversations
    cid = conv.create()
    for q in ["How often should I clean the alpha pump filter?", "and the seal?", "beta mower warranty?", "alpha pump volts"]:
        conv.add_turn(cid, lib.ask(q))
    gen = RandomLoad(random.random() * 1.5)
    app = create_app(make_library(tui_docs, gen))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.loaded)
        await pilot.pause(random.random() * 0.3)
        await pilot.press("enter")
        await pilot.pause(random.random() * 0.3)
        app.screen.query_one("#question", Input).focus()
        await pilot.press(*"and the seal?", "enter")
        try:
            await wait_for(pilot, lambda: len(app.main.query(AnswerView)) >= 5 and not app.main.answering and app.models_ready, timeout=15)
        finally:
            print("i", i, "batch", app._batch_count, "answering", app.main.answering, "views", len(app.main.query(AnswerView)))
        assert app._batch_count == 0
