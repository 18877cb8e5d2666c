"""Download the Data Docs assets of config/data_docs_assets.yaml into assets/data_docs/.

A maintainer's step, run once when GX (and so the list of CDN URLs) changes; its output is
committed, and nothing downloads when the pipeline runs. Each package comes from
registry.npmjs.org at its pinned version; the tarball is checked against npm's sha512
integrity before anything is extracted. Writes assets/data_docs/NOTICE.md (package, version,
licence, file, sha256) and copies each package's licence file.

    .venv/bin/python scripts/vendor_data_docs_assets.py
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import json
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "data_docs_assets.yaml"
OUT = ROOT / "assets" / "data_docs"
REGISTRY = "https://registry.npmjs.org/"


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https host
        return response.read()


def tarball(package: str, version: str) -> tuple[tarfile.TarFile, dict]:
    meta = json.loads(fetch(REGISTRY + urllib.parse.quote(package, safe="@") + "/" + version))
    data = fetch(meta["dist"]["tarball"])
    algo, _, expected = meta["dist"]["integrity"].partition("-")
    if algo != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise SystemExit(f"{package}@{version}: tarball does not match npm's integrity")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz"), meta


def member_bytes(tar: tarfile.TarFile, path: str) -> bytes:
    handle = tar.extractfile("package/" + path)
    if handle is None:
        raise SystemExit(f"{path}: not a file in the package")
    return handle.read()


def also_files(tar: tarfile.TarFile, pattern: str) -> list[str]:
    names = [m.name.removeprefix("package/") for m in tar.getmembers() if m.isfile()]
    if pattern.endswith("/"):
        pattern += "*"
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def package_root(asset: dict) -> PurePosixPath:
    """Where the package root lands so that ``also`` files keep their place next to ``file``."""
    local, file = PurePosixPath(asset["local"]), PurePosixPath(asset["file"])
    depth = len(file.parts)
    if local.parts[-depth:] != file.parts:
        raise SystemExit(f"{asset['local']}: with `also`, local must end with {asset['file']}")
    return PurePosixPath(*local.parts[:-depth])


def main() -> None:
    assets = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["assets"]
    rows: list[tuple[str, str, str, str, str]] = []
    packages: dict[tuple[str, str], tuple[tarfile.TarFile, dict]] = {}
    for asset in assets:
        key = (asset["package"], str(asset["version"]))
        if key not in packages:
            print(f"{key[0]}@{key[1]}", file=sys.stderr)
            packages[key] = tarball(*key)
        tar, meta = packages[key]
        files = [(asset["file"], PurePosixPath(asset["local"]))]
        if asset.get("also"):
            root = package_root(asset)
            files += [(f, root / f) for f in also_files(tar, asset["also"])]
        for source, local in files:
            data = member_bytes(tar, source)
            target = OUT / local
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            licence = meta.get("license") or "see licences/"
            rows.append(
                (key[0], key[1], str(licence), str(local), hashlib.sha256(data).hexdigest())
            )
    for (package, version), (tar, _meta) in packages.items():
        for name in tar.getnames():
            base = name.removeprefix("package/")
            if "/" not in base and base.upper().startswith(("LICENSE", "LICENCE")):
                target = OUT / "licences" / f"{package.replace('/', '_')}@{version}-{base}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member_bytes(tar, base))
    lines = [
        "# Third-party assets of the GX Data Docs pages",
        "",
        "Written by `scripts/vendor_data_docs_assets.py` from `config/data_docs_assets.yaml`;",
        "do not edit by hand. Each file is unchanged from the npm package named (registry",
        "tarball checked against npm's sha512 integrity); licence texts are in `licences/`.",
        "",
        "| package | version | licence | file | sha256 |",
        "|---|---|---|---|---|",
        *(f"| {p} | {v} | {lic} | `{f}` | `{h[:16]}` |" for p, v, lic, f, h in rows),
        "",
    ]
    (OUT / "NOTICE.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"{len(rows)} files in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
