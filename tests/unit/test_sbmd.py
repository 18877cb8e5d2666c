"""sBMD (mg/cm²) from the published formulas of DOMAIN.md, independent of the config file.

Hip (Hui 1997 / Lu 2001): sBMD = 1000 × (a + b × BMD).
Spine (Genant 1994, L2-L4): Hologic 1.0550 × (BMD − 0.972) + 1.0436; Lunar 0.9683 × (BMD −
1.100) + 1.0436; Norland 0.9743 × (BMD − 0.969) + 1.0436, × 1000.
"""

from __future__ import annotations

import pytest

from transforms import sbmd

HIP = {  # (site, manufacturer): (a, b) — DOMAIN.md
    ("femoral_neck", "Hologic"): (0.019, 1.087),
    ("femoral_neck", "GE Lunar"): (-0.023, 0.939),
    ("femoral_neck", "Norland"): (0.006, 0.985),
    ("total_hip", "Hologic"): (0.006, 1.008),
    ("total_hip", "GE Lunar"): (-0.031, 0.979),
    ("total_hip", "Norland"): (0.026, 1.012),
}
SPINE = {  # manufacturer: (slope, center) — Genant 1994 as quoted in DOMAIN.md
    "Hologic": (1.0550, 0.972),
    "GE Lunar": (0.9683, 1.100),
    "Norland": (0.9743, 0.969),
}
BMDS = (0.5, 0.812, 1.0, 1.234, 1.6)


@pytest.mark.parametrize(("site", "manufacturer"), sorted(HIP))
@pytest.mark.parametrize("bmd", BMDS)
def test_hip_formula(site, manufacturer, bmd):
    a, b = HIP[(site, manufacturer)]
    expected = 1000 * (a + b * bmd)
    assert sbmd.sbmd_mg_cm2(manufacturer, site, bmd) == pytest.approx(expected, abs=1e-9)
    value, approx = sbmd.site_sbmd(manufacturer, site, bmd)
    assert value == pytest.approx(expected, abs=1e-9) and approx is False


@pytest.mark.parametrize("manufacturer", sorted(SPINE))
@pytest.mark.parametrize("bmd", BMDS)
def test_spine_formula(manufacturer, bmd):
    slope, center = SPINE[manufacturer]
    expected = 1000 * (slope * (bmd - center) + 1.0436)
    assert sbmd.sbmd_mg_cm2(manufacturer, "lumbar_spine", bmd) == pytest.approx(expected, abs=1e-9)


def test_hand_values():
    # Hologic neck 0.850: 1000 × (0.019 + 1.087 × 0.85) = 1000 × 0.94295 = 942.95
    assert sbmd.sbmd_mg_cm2("Hologic", "femoral_neck", 0.85) == pytest.approx(942.95, abs=1e-9)
    # Lunar total hip 1.000: 1000 × (−0.031 + 0.979) = 948.0
    assert sbmd.sbmd_mg_cm2("GE Lunar", "total_hip", 1.0) == pytest.approx(948.0, abs=1e-9)
    # Lunar L2-L4 1.150: 1000 × (0.9683 × 0.050 + 1.0436) = 1000 × 1.092015 = 1092.015
    assert sbmd.sbmd_mg_cm2("GE Lunar", "lumbar_spine", 1.15) == pytest.approx(1092.015, abs=1e-9)


def test_spine_uses_l2_l4_when_present_else_l1_l4_flagged():
    slope, center = SPINE["Hologic"]
    exact = 1000 * (slope * (1.110 - center) + 1.0436)
    assert sbmd.site_sbmd("Hologic", "lumbar_spine", 1.080, 1.110) == pytest.approx(
        (exact, False), abs=1e-9
    )
    approx = 1000 * (slope * (1.080 - center) + 1.0436)
    value, flag = sbmd.site_sbmd("Hologic", "lumbar_spine", 1.080, None)
    assert value == pytest.approx(approx, abs=1e-9) and flag is True


@pytest.mark.parametrize("site", ["lumbar_spine", "total_hip", "femoral_neck"])
@pytest.mark.parametrize("manufacturer", ["Hologic", "GE Lunar", "Norland"])
def test_inverse_round_trip(site, manufacturer):
    for bmd in BMDS:
        s = sbmd.sbmd_mg_cm2(manufacturer, site, bmd)
        assert sbmd.bmd_from_sbmd(manufacturer, site, s) == pytest.approx(bmd, abs=1e-12)


def test_convert_between_manufacturers():
    # Hologic neck 0.85 → sBMD 942.95 → Lunar BMD (0.94295 + 0.023) / 0.939
    expected = (0.94295 + 0.023) / 0.939
    got = sbmd.convert_bmd("Hologic", "GE Lunar", "femoral_neck", 0.85)
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Hologic", "Hologic"),
        ("HOLOGIC", "Hologic"),
        ("GE Lunar", "GE Lunar"),
        ("Lunar", "GE Lunar"),
        ("Norland", "Norland"),
        ("Acme", None),
        (None, None),
    ],
)
def test_manufacturer_names(name, canonical):
    assert sbmd.canonical_manufacturer(name) == canonical


def test_undefined_cases_are_none():
    assert sbmd.sbmd_mg_cm2("Acme", "total_hip", 1.0) is None
    assert sbmd.site_sbmd("Hologic", "trochanter", 0.7) == (None, None)
    assert sbmd.site_sbmd("Hologic", "total_hip", None) == (None, None)
    assert sbmd.bmd_from_sbmd("Hologic", "tb_total", 900.0) is None
