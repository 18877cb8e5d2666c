"""OMOP views on a small hand-made warehouse: a patient known only from the medication feed
has no birth year, which the CDM requires, so neither the person nor their records appear
until a lab or DXA record brings one."""

from __future__ import annotations

import datetime as dt
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


def load(home, landing, files: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """Land ``files`` (paths under the landing folder), stage their feeds, build core and the
    OMOP views; a read-only connection to the warehouse."""
    for rel, text in files.items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text(text)
    steps.start_run(home, "r1", landing)
    steps.land(home, landing, "r1")
    for feed in sorted({rel.split("/")[0] for rel in files}):
        steps.stage(home, feed, "r1")
    steps.build_core(home, params.core_params())
    steps.build_omop(home)
    return duckdb.connect(str(home.warehouse), read_only=True)


def test_persons_without_birth_year_are_left_out_with_their_records(home, tmp_path):
    con = load(home, tmp_path / "landing", {"hl7/a.hl7": HL7, "meds/m.csv": MEDS})
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
                "measurement_source_concept_id, unit_concept_id, round(value_as_number, 2), "
                "range_low, range_high FROM omop.measurement"
            )
        ) == [
            ("14715-7", "pmol/L", 3025285, 3026725, 8845, round(73.4 / 3.671, 2), None, None),
            ("2243-4", "pg/mL", 3025285, 3025285, 8845, 18.0, 10.0, 40.0),  # OBX-7 10-40
        ]
    finally:
        con.close()


DXA = (
    "PAT_ID,SCAN_DATE,SCAN_TYPE,SIDE,INSTRUMENT,L1L4_BMD,L1L4_TSCORE,L1L4_ZSCORE,"
    "NECK_BMD,NECK_TSCORE,HTOT_BMD\n"
    "MRN1,03/01/2023,Spine,,Horizon A,0.950,-1.2,-0.8,,,\n"
    "MRN1,03/01/2023,Hip,Left,Horizon A,,,,0.700,-2.1,0.850\n"
    "MRN1,03/01/2023,Hip,Right,Horizon A,,,,0.720,,\n"
)
MEDS_ORDER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
    "MRN1,NORTH_CLINIC,order,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30\n"
    "MRN1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-02,,30,30\n"
    "MRN1,NORTH_CLINIC,,199224,anastrozole,1,tablet,daily,2023-01-03,,30,30\n"
    "MRN1,NORTH_CLINIC,order,199224,anastrozole,1,tablet,daily,2023-02-01,2024-01-31,,\n"
)


def test_dxa_values_are_measurements_and_record_types_are_drug_types(home, tmp_path):
    # every BMD, T- and Z-score of a feature site is a measurement with the DXA LOINC of its
    # site (DOMAIN.md) and its OMOP concept (config/omop_concepts.csv); each hip side is a
    # row; BMD is in g/cm2 (UCUM concept 32700), a score has no unit concept
    files = {"hl7/a.hl7": HL7, "dexa/hologic/d.csv": DXA, "meds/m.csv": MEDS_ORDER}
    con = load(home, tmp_path / "landing", files)
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    try:
        dxa = q(
            "SELECT measurement_source_value, measurement_concept_id, value_as_number, "
            "unit_source_value, unit_concept_id, measurement_date FROM omop.measurement "
            "WHERE measurement_source_value NOT IN ('2243-4', '14715-7')"
        )
        day = dt.date(2023, 3, 1)
        assert sorted(dxa) == sorted(
            [
                ("24966-4", 3033804, 0.950, "g/cm2", 32700, day),  # spine BMD
                ("38267-1", 3049654, -1.2, "{T-score}", 0, day),
                ("85394-5", 36204417, -0.8, "{Z-score}", 0, day),
                ("24701-5", 3021722, 0.700, "g/cm2", 32700, day),  # neck left
                ("38263-0", 3051450, -2.1, "{T-score}", 0, day),
                ("38261-4", 3052486, 0.850, "g/cm2", 32700, day),  # total hip left
                ("24701-5", 3021722, 0.720, "g/cm2", 32700, day),  # neck right
            ]
        )
        assert q("SELECT count(DISTINCT measurement_id) = count(*) FROM omop.measurement") == [
            (True,)
        ]
        assert sorted(q("SELECT drug_type_concept_id FROM omop.drug_exposure")) == [
            (32817,),  # no record type: EHR
            (32825,),  # dispense: EHR dispensing record
            (32838,),  # order: EHR prescription
            (32838,),
        ]
        # days supply and end date as the source specified them (CDM v5.4): a supply of 30
        # sent, its end (Jan 1 + 30 − 1 = Jan 30) derived; an order's end sent, its 365-day
        # "supply" derived
        assert q(
            "SELECT drug_exposure_start_date, drug_exposure_end_date, verbatim_end_date, "
            "days_supply FROM omop.drug_exposure ORDER BY drug_exposure_start_date"
        ) == [
            (dt.date(2023, 1, 1), dt.date(2023, 1, 30), None, 30),
            (dt.date(2023, 1, 2), dt.date(2023, 1, 31), None, 30),
            (dt.date(2023, 1, 3), dt.date(2023, 2, 1), None, 30),
            (dt.date(2023, 2, 1), dt.date(2024, 1, 31), dt.date(2024, 1, 31), None),
        ]
        columns = {r[0] for r in q("DESCRIBE omop.person")}
        assert {
            "race_source_value",
            "race_source_concept_id",
            "ethnicity_source_value",
            "ethnicity_source_concept_id",
        } <= columns
    finally:
        con.close()
