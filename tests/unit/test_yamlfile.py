"""The shared YAML reader: parsed once per file version, a fresh copy per caller."""

from __future__ import annotations

import datetime
import os

import yaml

from transforms.catalog import CONFIG_DIR
from transforms.yamlfile import _parsed, read_yaml


def test_a_file_is_parsed_once_and_callers_cannot_change_what_others_get(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b: [1, 2]\n", encoding="utf-8")
    before = _parsed.cache_info()
    first = read_yaml(path)
    first["a"]["b"].append(3)
    second = read_yaml(path)
    after = _parsed.cache_info()
    assert second == {"a": {"b": [1, 2]}}
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 1


def test_an_edited_file_is_read_again(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("x: 1\n", encoding="utf-8")
    assert read_yaml(path) == {"x": 1}
    # same size, same second: only the nanosecond mtime tells the versions apart
    path.write_text("x: 2\n", encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert read_yaml(path) == {"x": 2}
    path.write_text("x: 30\n", encoding="utf-8")
    assert read_yaml(path) == {"x": 30}
    # replaced by rename with the old file's mtime and size (os.replace, rsync -a, tar x)
    other = tmp_path / "new.yaml"
    other.write_text("x: 40\n", encoding="utf-8")
    st = path.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    assert read_yaml(path) == {"x": 40}


def test_every_shipped_config_reads_as_the_pure_python_safe_loader_reads_it():
    # libyaml and PyYAML's own loader differ at the edges (a tab after a colon, lone
    # surrogates): the shipped files must not depend on which one a machine has
    files = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert len(files) >= 9
    for f in files:
        assert read_yaml(f) == yaml.safe_load(f.read_text(encoding="utf-8")), f


def test_empty_file_is_none_and_yaml_11_scalars_are_read_as_the_safe_loader_reads_them(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("", encoding="utf-8")
    assert read_yaml(path) is None
    path.write_text("on: yes\nd: 2024-01-02\nf: 1e3\nn: ~\n", encoding="utf-8")
    # YAML 1.1, as yaml.safe_load reads it: yes/on are booleans, 1e3 without a dot is a string
    expected = {True: True, "d": datetime.date(2024, 1, 2), "f": "1e3", "n": None}
    assert read_yaml(path) == expected == yaml.safe_load(path.read_text(encoding="utf-8"))
