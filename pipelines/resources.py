"""Resources: where data lives, where MLflow tracks, the run settings, and how frames are stored."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import dagster as dg
import polars as pl
from pydantic import Field

from features.catalogue import Catalogue, load_catalogue
from features.ingest.pieces import piece_key
from features.ingest.validate import parse_timestamp
from models.explain.playbook import Playbook, load_playbook
from models.explain.published_outputs import staged
from models.explain.touchpoint_drivers import FlagRule
from models.tracking import Tracking
from pipelines.metadata import column_schema

# a bucket kept as pieces lists them here when their names alone do not say which are current
MANIFEST = "manifest.json"


def write_replacing(
    frame: pl.DataFrame, target: Path, metadata: dict[str, str] | None = None
) -> None:
    """Written beside and renamed into place: a killed run leaves the old file or the new one,
    never half of one that a later run would fail to read."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.writing")
    frame.write_parquet(staging, metadata=metadata)
    staging.replace(target)


def bucket_files(assets: Path, asset: str, bucket: str) -> list[Path]:
    """The files holding one stored bucket of a bucketed asset under `assets`: the pieces in its
    folder <asset>/<bucket>/ (an event table's one per landing file, the customer-days' one per
    month, which its manifest lists), or its one file <asset>/<bucket>.parquet; none when the
    bucket is not stored."""
    folder = assets / asset / bucket
    if (folder / MANIFEST).is_file():
        return [folder / name for name in json.loads((folder / MANIFEST).read_text())["pieces"]]
    if folder.is_dir():  # pieces named by their (escaped) landing keys, read in key order
        return sorted(folder.glob("*.parquet"), key=piece_key)
    single = assets / asset / f"{bucket}.parquet"
    return [single] if single.is_file() else []


class DataRoot(dg.ConfigurableResource):
    """The data root: landing/ (inputs), outputs/ (for retention teams), the pipeline's folders."""

    path: str = Field(
        description="Folder holding landing/, outputs/, quarantine/ and the asset store."
    )

    pseudonym_key: str | None = Field(
        default=None,
        description=(
            "Key of the customer-id pseudonyms (features.ingest.pseudonyms); from the "
            "environment variable TOUCHPOINT_CHURN_PSEUDONYM_KEY, never stored."
        ),
    )

    def folder(self, name: str) -> Path:
        folder = Path(self.path) / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def landing(self) -> Path:
        return Path(self.path) / "landing"

    def staged_outputs(self, run_id: str) -> Path:
        """Where a run writes its outputs; `published_outputs` makes them outputs/."""
        return staged(Path(self.path), run_id)

    def asset_file(self, asset: str, partition: str) -> Path:
        """Where a bucketed asset kept in one file a bucket keeps one bucket's rows
        (<data root>/assets/<asset>/<bucket>.parquet; the event tables and the customer-days keep
        pieces instead, `bucket_files`). Bucketed assets write their own files, because one run
        may hold many buckets and an IO manager stores one value per step."""
        return Path(self.path) / "assets" / asset / f"{partition}.parquet"

    def stored_bucket(self, asset: str, partition: str) -> Path:
        """`asset_file` of a bucket a step reads: an error that says what to run when the bucket
        is not stored (a run of some buckets only, on a cluster, leaves the others to theirs)."""
        path = self.asset_file(asset, partition)
        if not path.is_file():
            raise FileNotFoundError(
                f"{asset} has no bucket {partition} ({path}): materialize every bucket of "
                f"{asset} first (the daily_scoring job does)"
            )
        return path

    def table_file(self, asset: str) -> Path:
        """An unpartitioned table asset's file, where FrameStore (based in <root>/assets) keeps
        it."""
        return Path(self.path) / "assets" / f"{asset}.parquet"

    def value_file(self, asset: str) -> Path:
        """Where FrameStore keeps an unpartitioned asset's JSON value (the feature plan, the
        model's record): what an asset reads of its own last materialization."""
        return Path(self.path) / "assets" / f"{asset}.json"

    def bucket_files(self, asset: str, bucket: str) -> list[Path]:
        """The files one stored bucket of a bucketed asset is in (`bucket_files`)."""
        return bucket_files(Path(self.path) / "assets", asset, bucket)

    def bucket_folder(self, asset: str, bucket: str) -> Path:
        """Where a bucket kept as pieces keeps them: <data root>/assets/<asset>/<bucket>/."""
        return Path(self.path) / "assets" / asset / bucket

    def write_bucket(self, asset: str, partition: str, frame: pl.DataFrame) -> None:
        """Store one bucket's rows of a bucketed asset where `asset_file` and `FrameStore` read
        them."""
        write_replacing(frame, self.asset_file(asset, partition))

    def file_pieces(self, table: str, key: str, buckets: int) -> Path:
        """The folder of one landing file's accepted rows split by customer bucket (one
        <bucket>.parquet per bucket the file has rows in); the bucket count is in the path, so
        files split for another count are split again."""
        return Path(self.path) / "assets" / f"{table}_files" / key / f"buckets={buckets}"

    def bucket_quarantine(self, table: str, bucket: str) -> Path:
        """The folder of one bucket's rows quarantined across files (an id already seen in an
        earlier file, an unknown customer): one <piece>.parquet per file that had any."""
        return Path(self.path) / "quarantine" / f"{table}_buckets" / bucket

    def file_quarantine(self, table: str, key: str) -> Path:
        """Where one event file's (one partition's) quarantined rows are kept."""
        return Path(self.path) / "quarantine" / table / f"{key}.parquet"

    def set_aside_folder(self, table: str, key: str) -> Path:
        """Where one event file that could not be read at all is copied, with its reason."""
        return Path(self.path) / "quarantine" / "files" / table / key

    def set_aside_log(self, table: str) -> Path:
        """The table's files and those set aside whole, rewritten on each run."""
        return Path(self.path) / "quarantine" / "files" / f"{table}.json"


class MlflowTracking(dg.ConfigurableResource):
    """A thin handle on MLflow: a local SQLite store by default, a tracking server in production."""

    tracking_uri: str = Field(
        description="MLflow tracking URI, e.g. sqlite:///.mlflow/mlflow.db or http://mlflow:5000."
    )
    experiment: str = Field(
        default="touchpoint-churn", description="Experiment that holds every training run."
    )
    model_name: str = Field(
        default="touchpoint-churn",
        description="Registered model name; scoring loads its `champion` alias.",
    )

    def tracking(self) -> Tracking:
        return Tracking(self.tracking_uri, self.experiment, self.model_name)


class ChurnSettings(dg.ConfigurableResource):
    """What churn means and how the model is validated; shared by every asset so they agree."""

    horizon_days: int = Field(
        default=90,
        description="A customer churns if they leave within this many days after a cutoff.",
    )
    train_cutoffs: int = Field(
        default=12,
        description="The most monthly cutoffs (the newest whose horizon is complete) to train on.",
    )
    as_of: str | None = Field(
        default=None,
        description=(
            "Score as of this ISO timestamp (inclusive); "
            "default: the latest timestamp in the inputs."
        ),
    )
    catalogue_path: str | None = Field(
        default=None, description="Touchpoint catalogue TOML; default: the packaged one."
    )
    flag_share_threshold: float = Field(
        default=0.10,
        description="Share of risk-raising contribution a touchpoint needs to be flagged.",
    )
    playbook_path: str | None = Field(
        default=None,
        description=(
            "Retention playbook TOML (touchpoint -> action, owner); default: the packaged one."
        ),
    )
    seed: int = Field(default=42, description="Seed for model training.")
    buckets: int = Field(
        default=1,
        ge=1,
        description=(
            "Customer buckets (hashed ids): the event tables, customer-days, snapshots, scoring "
            "features and SHAP values are built one bucket at a time, in memory bounded by a "
            "bucket. About one per 5 million events; changing it re-splits every landing file."
        ),
    )
    max_training_rows: int = Field(
        default=300_000,
        ge=1,
        description=(
            "Past this many training rows (customers x labelled cutoffs), the training snapshots "
            "hold a seeded sample of whole customers with about this many "
            "(features.training_sample): building and training grow with the rows, the model's "
            "ranking hardly past a few hundred thousand. Scoring always takes every customer."
        ),
    )
    currency: str = Field(
        default="EUR",
        description=(
            "Currency of the customers' monthly value and purchases (an ISO 4217 code, e.g. EUR, "
            "USD): how the retention list shows money."
        ),
    )

    def catalogue(self) -> Catalogue:
        return load_catalogue(self.catalogue_path)

    def playbook(self) -> Playbook:
        return load_playbook(self.playbook_path)

    def flag_rule(self) -> FlagRule:
        return FlagRule(share_threshold=self.flag_share_threshold, seed=self.seed)

    def as_of_timestamp(self) -> datetime | None:
        """`as_of` parsed as the contract parses timestamps; None when unset (the latest data)."""
        if self.as_of is None:
            return None
        parsed = pl.select(parse_timestamp(pl.lit(self.as_of))).item()
        if parsed is None:
            raise ValueError(f"as_of {self.as_of!r} is not an ISO 8601 timestamp")
        return parsed


@runtime_checkable
class JsonStored(Protocol):
    """A value the asset store keeps as JSON (a plan, a model result) and hands back typed:
    `to_json` returns a dict of JSON values, and `from_json` of that dict gives an equal value."""

    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self: ...


class FrameStore(dg.ConfigurableIOManager):
    """Polars frames as Parquet, and small values (JsonStored ones, dicts) as JSON, under
    <data root>/assets/. An input annotated with a JsonStored type gets that type back.

    Partitioned assets (customer buckets, landing files) write their own files and store nothing
    here: one run may hold many partitions, and an IO manager stores one value per step. An
    unpartitioned asset reading a bucketed table gets its buckets' files (`bucket_files`) as one
    frame; an input annotated `pl.LazyFrame` gets a lazy scan, of a table or of its buckets, and
    reads only the columns it selects.
    dagster-polars does not work with polars 2 (see shared/STACK.md); this is all we need of it.
    """

    base_dir: str = Field(description="Folder for stored asset values.")

    def _path(self, asset_key: dg.AssetKey, suffix: str, partition: str | None) -> Path:
        base = Path(self.base_dir, *asset_key.path)
        return base.with_suffix(suffix) if partition is None else base / f"{partition}{suffix}"

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if isinstance(obj, pl.DataFrame):
            path = self._path(context.asset_key, ".parquet", None)
            path.parent.mkdir(parents=True, exist_ok=True)
            obj.write_parquet(path)
            # every table asset's columns in the UI, whatever the asset's own metadata says
            context.add_output_metadata({"dagster/column_schema": column_schema(obj)})
            return
        if isinstance(obj, JsonStored):
            document = obj.to_json()
        elif isinstance(obj, dict):
            document = obj
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: FrameStore stores polars DataFrames, dicts "
                f"and values with to_json/from_json, not {type(obj).__name__}"
            )
        path = self._path(context.asset_key, ".json", None)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, default=str))

    def _load(self, asset_key: dg.AssetKey, as_type: object) -> object:
        parquet = self._path(asset_key, ".parquet", None)
        js = self._path(asset_key, ".json", None)
        if parquet.exists():
            return pl.scan_parquet(parquet) if as_type is pl.LazyFrame else pl.read_parquet(parquet)
        if js.exists():
            document = json.loads(js.read_text())
            return (
                as_type.from_json(document)
                if isinstance(as_type, type) and issubclass(as_type, JsonStored)
                else document
            )
        raise FileNotFoundError(
            f"{asset_key.to_user_string()} has not been materialized yet (looked for {parquet})"
        )

    def load_input(self, context: dg.InputContext) -> object:
        as_type = context.dagster_type.typing_type
        if not context.has_asset_partitions:
            return self._load(context.asset_key, as_type)
        keys = sorted(context.asset_partition_keys)
        if as_type in (pl.DataFrame, pl.LazyFrame):
            asset = "/".join(context.asset_key.path)
            stored = {key: bucket_files(Path(self.base_dir), asset, key) for key in keys}
            if missing := [key for key, found in stored.items() if not found]:
                raise FileNotFoundError(
                    f"{context.asset_key.to_user_string()} lacks buckets {missing[:3]} in "
                    f"{Path(self.base_dir, asset)}: materialize every bucket of it first"
                )
            files = [f for found in stored.values() for f in found]
            scan = pl.scan_parquet(files)
            return scan if as_type is pl.LazyFrame else scan.collect()
        raise TypeError(
            f"{context.asset_key.to_user_string()} is partitioned: read it as a pl.DataFrame or "
            f"pl.LazyFrame of its buckets, not {as_type}"
        )
