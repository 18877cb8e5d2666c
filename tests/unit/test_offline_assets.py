"""Data Docs pages rewritten to local assets: what is replaced, what is dropped, what stays."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import yaml

from transforms.reporting import offline_assets as oa

ASSETS = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "static/vendor/jquery/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "static/vendor/vega/vega.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "static/vendor/bootstrap/bootstrap.min.css"
    ),
}


def test_known_cdn_tags_point_at_local_copies_without_cors_attributes():
    page = (
        '<head><link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/'
        'bootstrap.min.css"/>\n<script src="https://code.jquery.com/jquery-3.7.1.min.js" '
        'integrity="sha384-abc" crossorigin="anonymous"></script>\n'
        "<script src='https://cdn.jsdelivr.net/npm/vega@5'></script></head>"
    )
    html, dropped = oa.localize(page, ASSETS, "../../")
    assert dropped == []
    assert html == (
        '<head><link rel="stylesheet" href="../../static/vendor/bootstrap/bootstrap.min.css"/>\n'
        '<script src="../../static/vendor/jquery/jquery.min.js"></script>\n'
        "<script src='../../static/vendor/vega/vega.min.js'></script></head>"
    )


def test_unknown_remote_tags_are_dropped_and_reported_links_and_local_tags_stay():
    page = (
        '<script src="https://cdn.example.org/new.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/f.css">'
        '<script src="static/local.js"></script>'
        '<script>var x = "https://not.a.tag/";</script>'
        '<a href="https://docs.greatexpectations.io/">GX docs</a>'
    )
    html, dropped = oa.localize(page, ASSETS, "")
    assert dropped == ["https://cdn.example.org/new.js", "//fonts.example.org/f.css"]
    assert html == (
        '<script src="static/local.js"></script>'
        '<script>var x = "https://not.a.tag/";</script>'
        '<a href="https://docs.greatexpectations.io/">GX docs</a>'
    )


def test_gx_logo_on_s3_becomes_the_site_copy():
    page = (
        '<img class="brand" src="https://great-expectations-web-assets.s3.us-east-2.amazonaws'
        '.com/logo-long.png?d=20261203T094643.166349Z" alt="logo">'
    )
    html, _ = oa.localize(page, ASSETS, "../")
    assert html == '<img class="brand" src="../static/images/logo-long.png" alt="logo">'


def test_relative_root_counts_folders_below_the_site(tmp_path):
    assert oa.relative_root(tmp_path / "index.html", tmp_path) == ""
    page = tmp_path / "validations" / "core" / "t" / "run" / "x.html"
    assert oa.relative_root(page, tmp_path) == "../../../../"


def test_every_configured_asset_is_committed_and_byte_identical_to_its_notice():
    """The copies exist where the mapping says, and NOTICE.md records each one's sha256."""
    assets = yaml.safe_load(oa.ASSETS_YAML.read_text(encoding="utf-8"))["assets"]
    notice = (oa.ASSETS_DIR / "NOTICE.md").read_text(encoding="utf-8")
    for asset in assets:
        path = oa.ASSETS_DIR / asset["local"]
        assert path.is_file(), asset["local"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        assert f"| `{asset['local']}` | `{digest}` |" in notice, asset["local"]
    assert set(oa.load_assets()) == {a["url"] for a in assets}


def _sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def test_copies_match_the_subresource_integrity_gx_pins():
    """GX pins these two CDN files by hash in its pages: the npm copies are those very bytes."""
    vendor = oa.ASSETS_DIR
    assert _sri(vendor / "popper.js" / "popper.min.js") == (
        "sha384-ApNbgh9B+Y1QKtv3Rn7W3mgPxhU9K/ScQsAP7hUibX39j7fakFPskvXusvfa0b4Q"
    )
    assert _sri(vendor / "bootstrap" / "bootstrap.min.js") == (
        "sha384-JjSmVgyd0p3pXB1rRibZUAYoIIy6OrQ6VrjIEaFf/nJGzIxFDsf4x0xIM+B07jRM"
    )


def test_site_static_files_are_reached_from_any_depth():
    """GX writes '../../../../static/…' on pages five folders deep: corrected, and a correct
    one is left as it was."""
    page = (
        '<link rel="icon" href="../../../../static/images/favicon.ico">'
        '<link rel="stylesheet" href="static/styles/x.css">'
        '<a href="../../../../static/not-a-tag.html">x</a>'
    )
    html, _ = oa.localize(page, ASSETS, "../../../../../")
    assert html == (
        '<link rel="icon" href="../../../../../static/images/favicon.ico">'
        '<link rel="stylesheet" href="../../../../../static/styles/x.css">'
        '<a href="../../../../static/not-a-tag.html">x</a>'
    )
    same = '<link rel="icon" href="../../static/images/favicon.ico">'
    assert oa.localize(same, ASSETS, "../../")[0] == same


def test_remote_css_url_in_an_inline_style_is_dropped():
    """GX's dark-mode style loads its logo as a CSS background from S3: a page opened in a
    browser set to dark mode fetched it (seen with Chromium's net log). No copy of that
    image is shipped, so the url() goes; the rule stays, with no background image."""
    page = (
        "<style>\n@media (prefers-color-scheme: dark) {\n  .navbar-brand a {\n"
        "    background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws"
        ".com/full_logo_dark.png') 0 0 no-repeat;\n  }\n"
        "  .x { background-image: url(//cdn.example.org/a.png); }\n"
        '  .y { background-image: url("static/images/local.png"); }\n}\n</style>'
        '<div style="background: url(https://cdn.example.org/b.png)">text</div>'
        '<a href="https://docs.greatexpectations.io/">GX docs</a>'
    )
    html, dropped = oa.localize(page, ASSETS, "../")
    assert dropped == []
    assert html == (
        "<style>\n@media (prefers-color-scheme: dark) {\n  .navbar-brand a {\n"
        "    background: none 0 0 no-repeat;\n  }\n"
        "  .x { background-image: none; }\n"
        '  .y { background-image: url("static/images/local.png"); }\n}\n</style>'
        '<div style="background: none">text</div>'
        '<a href="https://docs.greatexpectations.io/">GX docs</a>'
    )
