"""The retention playbook: touchpoint -> what to do and who does it (data, in
models/explain/playbook.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PLAYBOOK = Path(__file__).with_name("playbook.toml")


class PlaybookError(ValueError):
    """The playbook file is not usable; the message says what to fix."""


@dataclass(frozen=True)
class Play:
    action: str
    owner: str


@dataclass(frozen=True)
class Playbook:
    plays: dict[str, Play]
    default: Play

    def for_touchpoint(self, touchpoint: str) -> Play:
        return self.plays.get(touchpoint, self.default)


def load_playbook(path: str | Path | None = None) -> Playbook:
    path = Path(path) if path else DEFAULT_PLAYBOOK
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise PlaybookError(f"cannot read playbook {path}: {err}") from err

    def play(name: str, spec: dict) -> Play:
        if not spec.get("action") or not spec.get("owner"):
            raise PlaybookError(f"{path}: [{name}] needs both action and owner")
        return Play(spec["action"], spec["owner"])

    if "default" not in raw:
        raise PlaybookError(f"{path}: add a [default] action for touchpoints without their own")
    return Playbook(
        {name: play(f"actions.{name}", spec) for name, spec in raw.get("actions", {}).items()},
        play("default", raw["default"]),
    )
