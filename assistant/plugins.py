"""Plugin discovery through entry points: list without importing, load on demand.

One entry-point group per seam. The built-in plugins in ``plugins/`` are
registered through the same groups by this project's ``pyproject.toml``; the
core has no special path for them.

An entry point names a factory (usually a class). Its keyword parameters are the
plugin's settings, read from ``[plugins.NAME]`` in config.toml and checked
against the parameter annotations, so errors name the plugin and the key.

A plugin that fails to import or raises at load is recorded once with its reason
(and printed once to stderr); everything else keeps working.

Name clashes: when two entry points in one group share a name, the one from the
distribution whose name sorts first wins, except that a third-party plugin wins
over a built-in one (``assistant-*`` built-ins are shadowed by the user's
plugin). The loser is listed with status ``shadowed``. Reader suffix clashes are
settled the same way, and ``[plugins.NAME] enabled = false`` turns a plugin off.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ConfigError, check_value

if TYPE_CHECKING:  # importlib.metadata loads with the first scan: a search with no plugin stage never needs it
    from importlib.metadata import EntryPoint

__all__ = ["GROUPS", "PluginInfo", "PluginRegistry", "PluginError"]

GROUPS = {
    "sources": "assistant.sources",
    "readers": "assistant.readers",
    "generators": "assistant.generators",
    "commands": "assistant.commands",
    "rerankers": "assistant.rerankers",
}

BUILTIN_DISTRIBUTION = "offline-assistant"


class PluginError(Exception):
    pass


@dataclass
class PluginInfo:
    group: str  # short name: "readers"
    name: str
    distribution: str
    version: str
    entry_point: EntryPoint
    status: str = "ok"  # ok | failed | disabled | shadowed | not loaded
    reason: str = ""
    suffixes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": GROUPS[self.group],
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "suffixes": list(self.suffixes),
            "status": self.status,
            "reason": self.reason,
        }


def _precedence(info: PluginInfo) -> tuple[int, str]:
    # third-party before built-in, then distribution name for determinism
    return (1 if info.distribution == BUILTIN_DISTRIBUTION else 0, info.distribution)


def _settings_for(factory: Any, name: str, table: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Check a ``[plugins.NAME]`` table against the factory's keyword parameters.

    ``defaults`` are core settings offered to the plugin (e.g. [generation] model);
    they are passed only where the factory has a parameter of that name.
    """
    table = {k: v for k, v in table.items() if k != "enabled"}
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return table
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # an annotation that cannot be resolved: check names, not types
        hints = {}
    params = {p.name: p for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    out = {k: v for k, v in defaults.items() if k in params}
    for key, value in table.items():
        if key not in params:
            if accepts_any:
                out[key] = value
                continue
            known = ", ".join(sorted(params)) or "none"
            raise ConfigError(f"plugins.{name}.{key}: unknown setting for plugin '{name}' (known: {known})")
        out[key] = check_value(f"plugins.{name}.{key}", value, hints.get(key, Any))
    return out


class PluginRegistry:
    """Every plugin of every group, listed from metadata; loaded one at a time."""

    def __init__(self, settings: dict[str, dict[str, Any]] | None = None, *, warn=None):
        self.settings = settings or {}
        self._warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self._loaded: dict[tuple[str, str], Any] = {}
        self.infos: list[PluginInfo] = []
        # one scan of the installed distributions for all groups (each entry_points(group=...) call
        # reads them all again), and each distribution's metadata parsed once: every command pays this
        from importlib.metadata import entry_points

        every = entry_points()
        dists: dict[int, tuple[str, str]] = {}
        for short, group in GROUPS.items():
            by_name: dict[str, list[PluginInfo]] = {}
            for ep in every.select(group=group):
                if ep.dist is None:
                    dist, version = "unknown", ""
                else:
                    if id(ep.dist) not in dists:
                        meta = ep.dist.metadata
                        dists[id(ep.dist)] = (meta["Name"], meta["Version"])
                    dist, version = dists[id(ep.dist)]
                info = PluginInfo(short, ep.name, dist, version, ep, status="not loaded")
                by_name.setdefault(ep.name, []).append(info)
            for name, infos in sorted(by_name.items()):
                # the same distribution seen twice (e.g. an editable install) is one plugin
                unique = {i.distribution: i for i in infos}
                ranked = sorted(unique.values(), key=_precedence)
                for loser in ranked[1:]:
                    loser.status = "shadowed"
                    loser.reason = f"name '{name}' also provided by {ranked[0].distribution}, which wins"
                for info in ranked:
                    if self.settings.get(name, {}).get("enabled", True) is False and info is ranked[0]:
                        info.status = "disabled"
                        info.reason = f"[plugins.{name}] enabled = false"
                self.infos.extend(ranked)

    def names(self, group: str) -> list[str]:
        return [i.name for i in self.infos if i.group == group and i.status not in ("shadowed", "disabled")]

    def info(self, group: str, name: str) -> PluginInfo | None:
        for i in self.infos:
            if i.group == group and i.name == name and i.status != "shadowed":
                return i
        return None

    def load(self, group: str, name: str, defaults: dict[str, Any] | None = None) -> Any:
        """The plugin object (factory called with its settings), or PluginError."""
        key = (group, name)
        if key in self._loaded:
            return self._loaded[key]
        info = self.info(group, name)
        if info is None:
            raise PluginError(f"no {group} plugin named '{name}' (installed: {', '.join(self.names(group)) or 'none'})")
        if info.status == "disabled":
            raise PluginError(f"{group} plugin '{name}' is disabled ({info.reason})")
        if info.status == "failed":
            raise PluginError(f"{group} plugin '{name}' failed to load: {info.reason}")
        try:
            factory = info.entry_point.load()
            settings = _settings_for(factory, name, self.settings.get(name, {}), defaults or {})
            obj = factory(**settings) if callable(factory) else factory
        except ConfigError as e:
            info.reason = f"config: {e}"
            raise
        except Exception as e:  # a plugin fails alone
            info.status = "failed"
            info.reason = f"{type(e).__name__}: {e}"
            self._warn(f"assistant: {group} plugin '{name}' ({info.distribution}) failed: {info.reason}")
            raise PluginError(f"{group} plugin '{name}' failed to load: {info.reason}") from e
        info.status = "ok"
        if group == "readers":
            info.suffixes = tuple(s.lower() for s in getattr(obj, "suffixes", ()))
        self._loaded[key] = obj
        return obj

    def load_all(self, group: str, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        """Load every enabled plugin of a group; failures are recorded and skipped."""
        out = {}
        for name in self.names(group):
            try:
                out[name] = self.load(group, name, defaults)
            except PluginError:
                continue
        return out

    def readers_by_suffix(self, defaults: dict[str, Any] | None = None) -> dict[str, tuple[str, Any]]:
        """suffix -> (plugin name, reader). Third-party readers win over built-ins; then by name.

        ``defaults``: core settings offered to reader factories with a parameter of
        that name (the ingest offers ``ocr_seconds_per_page``).
        """
        readers = self.load_all("readers", defaults)
        ranked = sorted(readers, key=lambda n: (_precedence(self.info("readers", n)), n))
        table: dict[str, tuple[str, Any]] = {}
        for name in ranked:
            for suffix in self.info("readers", name).suffixes:
                table.setdefault(suffix, (name, readers[name]))
        return table

    def suffix_conflicts(self) -> list[str]:
        """Human-readable lines for suffixes claimed by more than one reader."""
        winners = self.readers_by_suffix()
        lines = []
        for info in self.infos:
            if info.group != "readers" or info.status != "ok":
                continue
            for s in info.suffixes:
                winner = winners.get(s)
                if winner and winner[0] != info.name:
                    lines.append(f"{s}: handled by '{winner[0]}', not '{info.name}'")
        return lines
