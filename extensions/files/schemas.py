"""Request bodies of ``/v1/files`` and ``/v1/vector_stores`` (unknown fields ignored, like the
rest of the API; known ones checked with 400s naming the field)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from jan.sdk.openai_requests import Metadata

from .search import check_filter

FileId = Annotated[str, Field(min_length=1, max_length=64)]


def _check_attributes(value: Any) -> dict[str, Any] | None:
    """OpenAI's attributes: at most 16 keys (<= 64 chars); values str (<= 512), number, bool."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16:
        raise ValueError("must be an object with at most 16 keys")
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise ValueError("keys must be strings of at most 64 characters")
        if isinstance(item, str) and len(item) > 512:
            raise ValueError(f"value of {key!r} is longer than 512 characters")
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"value of {key!r} must be a string, number or boolean")
    return value


Attributes = Annotated[dict[str, Any] | None, BeforeValidator(_check_attributes)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ExpiresAfter(_Request):
    anchor: Literal["last_active_at"] = "last_active_at"
    days: int = Field(ge=1, le=365)


class Chunking(_Request):
    type: Literal["auto", "static"]
    static: dict[str, Any] | None = None


class StoreCreate(_Request):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    file_ids: list[FileId] = Field(default_factory=list, max_length=500)
    metadata: Metadata = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: Chunking | None = None


class StoreModify(_Request):
    name: str | None = Field(default=None, max_length=256)
    metadata: Metadata = None
    expires_after: ExpiresAfter | None = None


class FileAdd(_Request):
    file_id: FileId
    attributes: Attributes = None
    chunking_strategy: Chunking | None = None


class FileUpdate(_Request):
    attributes: Attributes


class BatchFile(_Request):
    file_id: FileId
    attributes: Attributes = None
    chunking_strategy: Chunking | None = None


class BatchCreate(_Request):
    file_ids: list[FileId] | None = Field(default=None, max_length=500)
    files: list[BatchFile] | None = Field(default=None, max_length=500)
    attributes: Attributes = None
    chunking_strategy: Chunking | None = None

    def items(self) -> list[dict[str, Any]]:
        """Every file of the batch with its own attributes and strategy (or the batch's)."""
        shared = {"attributes": self.attributes, "chunking_strategy": _dump(
            self.chunking_strategy)}
        out = [{"file_id": f, **shared} for f in self.file_ids or []]
        for f in self.files or []:
            out.append({"file_id": f.file_id,
                        "attributes": f.attributes if f.attributes is not None
                        else self.attributes,
                        "chunking_strategy": _dump(f.chunking_strategy)
                        or shared["chunking_strategy"]})
        return out


class RankingOptions(_Request):
    ranker: Literal["auto", "default-2024-11-15", "default_2024_08_21", "none"] | None = None
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class SearchRequest(_Request):
    query: str | list[str]
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | list[str]) -> str | list[str]:
        text = value if isinstance(value, str) else " ".join(value)
        if not text.strip():
            raise ValueError("must not be empty")
        if len(text) > 4096:
            raise ValueError("must be at most 4096 characters")
        return value

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_filter(value)
        return value

    @property
    def text(self) -> str:
        return self.query if isinstance(self.query, str) else " ".join(self.query)


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(exclude_none=True) if model is not None else None
