"""The cluster specs shipped in ``clusters/specs/`` and the checks every spec must pass.

A spec is a Ray cluster-launcher YAML (``aws``, ``gcp``, ``onprem``) or a KubeRay manifest
(``kuberay-cluster``, ``kuberay-job``). ``tune cluster up SPEC`` accepts a shipped name or
a path; both are checked here first, so a malformed file fails before Ray is called.
"""

from pathlib import Path
from typing import Any

import yaml

SPECS_DIR = Path(__file__).resolve().parent / "specs"
LAUNCHER_KEYS = ("cluster_name", "provider", "available_node_types", "head_node_type")
NODE_TYPE_KEYS = ("resources", "node_config", "min_workers", "max_workers")


class SpecError(ValueError):
    """A cluster spec that cannot be used; the message names the file, key and fix."""


def spec_names() -> list[str]:
    """Every shipped spec name (file stem under ``specs/``), sorted."""
    return sorted(path.stem for path in SPECS_DIR.glob("*.yaml"))


def spec_path(spec: str | Path) -> Path:
    """The file of a shipped spec name (``aws``) or an existing path.

    Raises:
        SpecError: If ``spec`` is neither, listing the shipped names.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    shipped = SPECS_DIR / f"{str(spec).removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    raise SpecError(
        f"no cluster spec {str(spec)!r}: not a file, and not a shipped spec "
        f"({', '.join(spec_names())}); pass a path to a Ray cluster YAML or one of those names"
    )


def load_spec(spec: str | Path) -> dict[str, Any]:
    """Read and check a spec (shipped name or path); return its YAML content.

    Raises:
        SpecError: For unparsable YAML or a missing required key, naming the file.
    """
    path = spec_path(spec)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"cluster spec {str(path)!r} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise SpecError(f"cluster spec {str(path)!r} is not a YAML mapping; see {SPECS_DIR}")
    if "apiVersion" in data:
        check_kuberay_spec(data, path)
    else:
        check_launcher_spec(data, path)
    return data


def check_launcher_spec(data: dict[str, Any], path: Path | str = "<spec>") -> None:
    """Check the keys Ray's cluster launcher (``ray up``) requires.

    Raises:
        SpecError: Naming the first missing or inconsistent key.
    """
    for key in LAUNCHER_KEYS:
        if key not in data:
            raise SpecError(
                f"cluster spec {str(path)!r} has no {key!r}; a Ray cluster-launcher YAML "
                f"needs {', '.join(LAUNCHER_KEYS)} (see {SPECS_DIR / 'aws.yaml'})"
            )
    if not isinstance(data["provider"], dict) or "type" not in data["provider"]:
        raise SpecError(f"cluster spec {str(path)!r}: provider needs a 'type' (aws, gcp, local)")
    node_types = data["available_node_types"]
    if not isinstance(node_types, dict) or not node_types:
        raise SpecError(f"cluster spec {str(path)!r}: available_node_types must map names")
    for name, node in node_types.items():
        missing = [key for key in NODE_TYPE_KEYS if key not in (node or {})]
        if missing:
            raise SpecError(
                f"cluster spec {str(path)!r}: node type {name!r} has no {', '.join(missing)}"
            )
    if data["head_node_type"] not in node_types:
        raise SpecError(
            f"cluster spec {str(path)!r}: head_node_type {data['head_node_type']!r} is not one "
            f"of available_node_types ({', '.join(node_types)})"
        )


def check_kuberay_spec(data: dict[str, Any], path: Path | str = "<spec>") -> None:
    """Check the keys KubeRay requires of a ``RayCluster`` or ``RayJob``.

    Raises:
        SpecError: Naming the first missing key.
    """
    kind = data.get("kind")
    if data.get("apiVersion") != "ray.io/v1" or kind not in ("RayCluster", "RayJob"):
        raise SpecError(
            f"cluster spec {str(path)!r}: expected apiVersion ray.io/v1 and kind RayCluster "
            f"or RayJob, got {data.get('apiVersion')!r} / {kind!r}"
        )
    spec = data.get("spec") or {}
    if kind == "RayJob":
        if not spec.get("entrypoint"):
            raise SpecError(f"cluster spec {str(path)!r}: a RayJob needs spec.entrypoint")
        spec = spec.get("rayClusterSpec") or {}
    head = spec.get("headGroupSpec")
    if not head or "rayStartParams" not in head or "template" not in head:
        raise SpecError(
            f"cluster spec {str(path)!r}: needs headGroupSpec with rayStartParams and template"
        )
    for group in spec.get("workerGroupSpecs") or []:
        for key in ("groupName", "rayStartParams", "template"):
            if key not in group:
                raise SpecError(f"cluster spec {str(path)!r}: a workerGroupSpec has no {key!r}")
    if not spec.get("workerGroupSpecs"):
        raise SpecError(f"cluster spec {str(path)!r}: needs at least one workerGroupSpecs entry")
