"""OMOP views on a small hand-made warehouse: a patient known only from the medication feed
has no birth year, which the CDM requires, so neither the person nor their records appear
until a lab or DXA record brings one."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from warehouse import params, steps

pytestmark = pytest.mark.integration

HL7 = (
    "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|20230105120000||ORU^R01|C1|P|2.5.1\r"
    "PID|1||MRN1^^^NORTH_CLINIC^MR||TESTER^ANNA||19600101|M\r"
    "OBR|1||FIL1^LABWH_LIS|HORM^Hormones^L|||20230105083000\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.0|pg/mL|10-40|N|||F\r"
    "OBX|2|NM|E2^Estradiol^L^14715-7^Estradiol^LN||73.4|pmol/L|||||F\r"
)
MEDS = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
    "MRN1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30\n"
    "MRN2,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30\n"
)


def test_persons_without_birth_year_are_left_out_with_their_records(home, tmp_path):
    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    (landing / "meds").mkdir()
    (landing / "hl7" / "a.hl7").write_text(HL7)
    (landing / "meds" / "m.csv").write_text(MEDS)
    steps.start_run(home, "r1", landing)
    steps.land(home, landing, "r1")
    for feed in ("hl7", "meds"):
        steps.stage(home, feed, "r1")
    steps.build_core(home, params.core_params())
    steps.build_omop(home)
    con = duckdb.connect(str(home.warehouse), read_only=True)
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    try:
        assert q("SELECT count(*), count(birth_year) FROM core.dim_patient") == [(2, 1)]
        assert q("SELECT year_of_birth, gender_concept_id FROM omop.person") == [(1960, 8507)]
        [(person, key)] = q("SELECT person_id, person_source_value FROM omop.person")
        # a documented, version-independent id: the first 15 hex digits of md5(key)
        assert person == int(hashlib.md5(key.encode()).hexdigest()[:15], 16)
        assert q("SELECT DISTINCT person_id FROM omop.drug_exposure") == [(person,)]
        assert q("SELECT count(*) FROM omop.observation_period") == [(1,)]
        # the molar result is stored in pg/mL (73.4 / 3.671 = 19.99…); its unit as sent stays
        # as a mass concentration: the mass concept (2243-4's), the molar one as its source
        assert sorted(
            q(
                "SELECT measurement_source_value, unit_source_value, measurement_concept_id, "
                "measurement_source_concept_id, unit_concept_id, round(value_as_number, 2) "
                "FROM omop.measurement"
            )
        ) == [
            ("14715-7", "pmol/L", 3025285, 3026725, 8845, round(73.4 / 3.671, 2)),
            ("2243-4", "pg/mL", 3025285, 3025285, 8845, 18.0),
        ]
    finally:
        con.close()
