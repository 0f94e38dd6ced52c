"""Everything checkable before the weights load, in about a second and without importing torch: the data
(records, folds against scenario groups), the model's shape (layers, context) from its config or header, the
device against torch's build, and a hub id's reachability."""

from __future__ import annotations

from pathlib import Path

from vulnsteer.data.disjoint import load_fit_on
from vulnsteer.data.load import load_records
from vulnsteer.data.records import Record
from vulnsteer.data.root import resolve_data_root
from vulnsteer.errors import DataError
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.inputs import input_hashes
from vulnsteer.experiments.run_folder.folders import check_writable, resolved
from vulnsteer.experiments.run_folder.run_dir import check_out
from vulnsteer.model.peek import check_device_here, check_hub_reachable, peek_shape


def preflight(
    cfg: RunConfig, model: str, data: Path | str | None = None, out: Path | None = None, force: bool = False,
    command: str = "run", cache_dir: Path | None = None,
) -> tuple[Path, list[Record]]:
    """The data root and the records under study, once every check that needs no weights has passed.
    An --out holding an unfinished run of the same settings passes: that run is resumed. --out (else runs/)
    and --cache-dir must be folders this process can write."""
    if out is not None:
        check_out(Path(out), force, command, cfg.settings())
    if cache_dir is not None:
        check_writable(resolved(cache_dir, "--cache-dir"), "--cache-dir")
    root = resolve_data_root(Path(data) if data else None)
    records = load_records(root, cfg.baseline.subsets, cfg.baseline.cwes)
    if not records:
        raise DataError(f"no records for subsets {', '.join(cfg.baseline.subsets)}; check --subset and --cwe")
    if out is not None:  # an interrupted run there resumes only on the same data, templates and code
        check_out(Path(out), force, command, cfg.settings(), input_hashes(cfg, records, root))
    if cfg.fit_on:  # refuses fit-on data that shares a scenario group or a file with the test-on data
        fit = load_fit_on(root, cfg.fit_on, cfg.test_on, cfg.baseline.cwes)
        _both_labels(fit, "--fit-on " + ",".join(cfg.fit_on))
        cfg.steer.check_groups(len({r.group for r in fit}))  # one of --folds grouped folds validates
    elif cfg.stages:
        _both_labels(records, "--subset " + ",".join(cfg.baseline.subsets))
        if "steer" in cfg.stages:
            cfg.steer.check_groups(len({r.group for r in records}))
        elif len({r.group for r in records}) < 2:
            raise DataError(f"the data has {len({r.group for r in records})} scenario group; the probe's grouped "
                            "cross-validation needs at least 2; add data (more --cwe or --subset)")
    check_device_here(cfg.device)
    check_hub_reachable(model)
    shape = peek_shape(model)
    if shape is not None:
        cfg.baseline.check_context(shape.context)
        if "steer" in cfg.stages:
            cfg.steer.check_layers(shape.n_layers)
    return root, records


def _both_labels(records: list[Record], what: str) -> None:
    """Probes and steering vectors contrast vulnerable with secure code: data with one label cannot fit them."""
    labels = {r.label for r in records}
    if len(labels) < 2:
        only = "vulnerable" if labels == {1} else "secure"
        raise DataError(f"{what}: all {len(records)} records are labelled {only}; probes and steering need both "
                        "vulnerable and secure code")
