"""``extension.toml``: the manifest every extension carries, validated by pydantic."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ID = ID_PATTERN
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,63}")
_EVENT = re.compile(r"^(onStartup|\*|onRoute:/\S*|onEvent:\S+|onCommand:\S+)$")
"""``onCommand:models.list`` (words joined by dots) or ``onCommand:models.*``."""


class Engines(BaseModel):
    model_config = ConfigDict(extra="allow")
    jan: str = "*"


class CommandContribution(BaseModel):
    """A CLI command the extension implements: ``jan <name>``, listed in ``jan --help``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*( [a-z0-9][a-z0-9-]*)*$")
    description: str = ""
    requires: list[str] = Field(default_factory=list)
    """Services the command uses beyond the extension's own ``requires`` (their providers are
    started for it; the extension's ``dependencies`` always are)."""


class Contributes(BaseModel):
    model_config = ConfigDict(extra="allow")
    routes: list[str] = Field(default_factory=list)
    commands: list[CommandContribution] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("commands", mode="before")
    @classmethod
    def _commands(cls, v: Any) -> Any:
        # A bare "models list" is accepted too (no description).
        return [{"name": c} if isinstance(c, str) else c for c in v] if isinstance(v, list) else v


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str
    description: str = ""
    main: str
    engines: Engines = Field(default_factory=Engines)
    activation_events: list[str] = Field(default_factory=lambda: ["onStartup"])
    dependencies: list[str] = Field(default_factory=list)
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    contributes: Contributes = Field(default_factory=Contributes)
    requirements: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError("must be lowercase letters, digits, '.', '_' or '-' (max 64)")
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not _VERSION.fullmatch(v):
            raise ValueError("must look like 1.2.3 (letters, digits, '.', '+', '-')")
        return v

    @field_validator("main")
    @classmethod
    def _main(cls, v: str) -> str:
        module, _, attr = v.partition(":")
        if not module or not attr or not all(p.isidentifier() for p in module.split(".")):
            raise ValueError("must look like 'module:ClassName'")
        return v

    @field_validator("activation_events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        for event in v:
            if not _EVENT.match(event):
                raise ValueError(f"unknown activation event {event!r}")
        return v


class ManifestError(Exception):
    """A manifest that cannot be used, with the file and the offending field."""

    def __init__(self, path: Path, field: str | None, message: str) -> None:
        self.path, self.field, self.message = path, field, message
        where = f"{path}" + (f" [{field}]" if field else "")
        super().__init__(f"{where}: {message}")


def load_manifest(path: Path) -> Manifest:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(path, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(path, None, f"invalid TOML: {exc}") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise ManifestError(path, field, err["msg"]) from None


Kind = Literal["bundled", "data", "entry_point"]


def version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for piece in v.split("."):
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def satisfies(version: str, spec: str) -> bool:
    """A tiny range check for ``engines.jan``: ``*``, ``>=0.1``, ``>=0.1,<1``, ``^0.1``, ``0.1``."""
    for clause in (c.strip() for c in spec.split(",")):
        if clause in ("", "*"):
            continue
        have = version_tuple(version)
        if clause.startswith("^"):
            want = version_tuple(clause[1:])
            upper = (want[0] + 1,) if want[0] else (0, (want[1] if len(want) > 1 else 0) + 1)
            if not (want <= have < upper):
                return False
            continue
        op = re.match(r"(>=|<=|==|>|<|=)?", clause).group(0) or "=="
        want = version_tuple(clause[len(op):].strip())
        if op not in ("==", "="):  # 1.0 and 1.0.0 are the same version
            width = max(len(have), len(want))
            have, want = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        ok = {
            ">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want,
            "==": have[: len(want)] == want, "=": have[: len(want)] == want,
        }[op]
        if not ok:
            return False
    return True
