//! `designations import`: the real OFAC SDN (2021, legacy CSV) and UN
//! consolidated (2026) lists in `tests/fixtures/screening/` become designations
//! that the loader accepts, one per listed person or entity, with what the
//! lists say about each.

use std::path::PathBuf;
use std::process::Command;

use portcullis_core::designation::{Designation, load_sources};
use portcullis_import::{Options, Stats, ofac, to_jsonl, un};

use crate::support::root;

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/screening").join(name)
}

const UN_FILE: &str = "UN_consolidated_2026-02-27.xml";

fn import_ofac(options: &Options) -> (Vec<Designation>, Stats) {
    let (sdn, alt, add) = (fixture("sdn.csv"), fixture("alt.csv"), fixture("add.csv"));
    let files = ofac::Files {
        sdn: &sdn,
        alt: Some(&alt),
        add: Some(&add),
    };
    ofac::import(files, options).unwrap()
}

fn import_un(options: &Options) -> (Vec<Designation>, Stats) {
    un::import(&fixture(UN_FILE), options).unwrap()
}

fn record<'a>(records: &'a [Designation], id: &str) -> &'a Designation {
    records
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no record `{id}`"))
}

fn ids(d: &Designation) -> Vec<(String, String, Option<String>)> {
    d.identifiers
        .iter()
        .map(|i| (i.kind.clone().unwrap(), i.value.clone(), i.country.clone()))
        .collect()
}

fn id(kind: &str, value: &str, country: Option<&str>) -> (String, String, Option<String>) {
    (kind.into(), value.into(), country.map(Into::into))
}

#[test]
fn ofac_gives_one_record_per_sdn_line_with_its_source_id() {
    let (records, stats) = import_ofac(&Options::default());
    assert_eq!(records.len(), 8976);
    assert_eq!(stats.records, 8976);
    assert_eq!(stats.individuals, 4620);
    for r in &records {
        let source_id = r.source_id.as_deref().unwrap();
        assert_eq!(r.id, format!("OFAC-{source_id}"));
        assert!(source_id.bytes().all(|b| b.is_ascii_digit()), "{source_id}");
        assert_eq!(r.source.as_deref(), Some("OFAC-SDN"));
        assert!(matches!(
            r.kind.as_deref(),
            Some("individual" | "organization")
        ));
        assert!(!r.programs.is_empty(), "{}", r.id);
        assert_eq!(r.measure, None);
    }
    // Every alias of alt.csv is attached (a few repeat their record's own name).
    assert!(stats.aliases > 11_900, "{}", stats.aliases);
    assert_eq!(stats.orphans, 0);
    // Weak aliases (remarks' a.k.a.) are left out by default, and counted.
    assert_eq!(stats.weak_aliases_skipped, 2438);
}

#[test]
fn ofac_aliases_addresses_and_programs_are_attached() {
    let (records, _) = import_ofac(&Options::default());
    let bnc = record(&records, "OFAC-306");
    assert_eq!(
        bnc.names,
        ["BANCO NACIONAL DE CUBA", "NATIONAL BANK OF CUBA"]
    );
    assert_eq!(bnc.kind.as_deref(), Some("organization"));
    assert_eq!(bnc.programs, ["CUBA"]);
    assert_eq!(bnc.countries, ["CH", "ES", "JP", "PA"]);
    // Several programmes, split.
    let naqdi = record(&records, "OFAC-12057");
    assert_eq!(
        naqdi.programs,
        ["SDGT", "NPWMD", "IRGC", "IFSR", "IRAN-HR", "IRAN-EO13876"]
    );
    assert_eq!(
        naqdi.names.first().map(String::as_str),
        Some("NAQDI, Mohammad Reza")
    );
    assert!(naqdi.names.contains(&"NAGHDI, Mohammedreza".to_owned()));
}

#[test]
fn ofac_remarks_give_dates_of_birth_nationalities_and_documents() {
    let (records, stats) = import_ofac(&Options::default());

    // "DOB 19 Jun 1951; POB Giza, Egypt; Passport 1084010 (Egypt); alt. Passport 19820215; …"
    let zawahiri = record(&records, "OFAC-2676");
    assert_eq!(zawahiri.kind.as_deref(), Some("individual"));
    assert_eq!(zawahiri.date_of_birth.as_deref(), Some("1951-06-19"));
    assert!(zawahiri.other_dates_of_birth.is_empty());
    assert_eq!(
        ids(zawahiri),
        [
            id("passport", "1084010", Some("EG")),
            id("passport", "19820215", None)
        ]
    );

    // "DOB 17 Aug 1943; alt. DOB 1943; alt. DOB 1944; alt. DOB 21 Jun 1944; POB India;
    //  nationality Saudi Arabia; citizen Saudi Arabia; Passport C284181 (Saudi Arabia) issued …;
    //  National ID No. 1004860324 (Saudi Arabia); Registration ID 4-6032-0048-1 (Saudi Arabia); a.k.a. …"
    let bahaziq = record(&records, "OFAC-10692");
    assert_eq!(bahaziq.date_of_birth.as_deref(), Some("1943-08-17"));
    assert_eq!(bahaziq.other_dates_of_birth, ["1943", "1944", "1944-06-21"]);
    assert_eq!(bahaziq.nationalities, ["SA"]);
    assert_eq!(
        ids(bahaziq),
        [
            id("passport", "C284181", Some("SA")),
            id("national_id", "1004860324", Some("SA")),
            id("other", "4-6032-0048-1", Some("SA")),
        ]
    );

    // "nationality China; citizen China; alt. citizen Cambodia; … National ID No. D489833(9) (Hong Kong);
    //  British National Overseas Passport 750200421 (United Kingdom)"
    let wong = record(&records, "OFAC-9340");
    assert_eq!(wong.nationalities, ["CN", "KH"]);
    assert!(ids(wong).contains(&id("national_id", "D489833(9)", Some("HK"))));
    assert!(ids(wong).contains(&id("passport", "750200421", Some("GB"))));
    assert_eq!(wong.other_dates_of_birth.len(), 5);

    // "DOB 1951 to 1953; alt. DOB 1960 to 1962; alt. DOB Apr 1961; alt. DOB 1953; … nationality Iran"
    let naqdi = record(&records, "OFAC-12057");
    assert_eq!(naqdi.date_of_birth.as_deref(), Some("1951"));
    assert_eq!(
        naqdi.other_dates_of_birth,
        ["1952", "1953", "1960", "1961", "1962", "1961-04"]
    );
    assert_eq!(naqdi.nationalities, ["IR"]);

    // "Email Address dam.d.free@net.sy; Website www.ramakdutyfree.net"
    let ramak = record(&records, "OFAC-10933");
    assert_eq!(ramak.emails, ["dam.d.free@net.sy"]);
    assert_eq!(ramak.domains, ["ramakdutyfree.net"]);

    // Every individual whose remarks give a DOB has one, and none is unreadable.
    assert_eq!(stats.records_with_dob, 4428);
    assert_eq!(stats.skipped_dates, 0);
    assert!(stats.records_with_nationality >= 2540, "{stats:?}");
    assert!(stats.identifiers_of("passport") >= 1535, "{stats:?}");
    assert!(stats.identifiers_of("national_id") > 1000, "{stats:?}");
    // A few names are not countries at all, or have no ISO code (Kosovo).
    assert!(stats.skipped_country_names() < 100, "{stats:?}");
    assert!(stats.skipped_countries.contains_key("Kosovo"));
}

#[test]
fn ofac_weak_aliases_only_when_asked() {
    let options = Options {
        weak_aliases: true,
        ..Options::default()
    };
    let (records, stats) = import_ofac(&options);
    assert_eq!(stats.weak_aliases_skipped, 0);
    // 306's remarks: "a.k.a. 'BNC'."
    assert_eq!(
        record(&records, "OFAC-306").names,
        ["BANCO NACIONAL DE CUBA", "NATIONAL BANK OF CUBA", "BNC"]
    );
}

#[test]
fn un_gives_one_record_per_individual_and_entity() {
    let xml = std::fs::read_to_string(fixture(UN_FILE)).unwrap();
    let individuals = xml.matches("<INDIVIDUAL>").count();
    let entities = xml.matches("<ENTITY>").count();
    assert_eq!((individuals, entities), (730, 273));

    let (records, stats) = import_un(&Options::default());
    assert_eq!(records.len(), individuals + entities);
    assert_eq!(stats.individuals, individuals);
    for r in &records {
        let source_id = r.source_id.as_deref().unwrap();
        assert_eq!(r.id, format!("UN-{source_id}"));
        // Some references end with a space in the XML (`KPe.023 `): ids are trimmed.
        assert!(!source_id.contains(char::is_whitespace), "{source_id:?}");
        assert!(xml.contains(&format!("<REFERENCE_NUMBER>{source_id}")));
        assert_eq!(r.source.as_deref(), Some("UN"));
        assert_eq!(r.programs.len(), 1, "{}", r.id);
    }
    assert!(stats.aliases > 2400, "{stats:?}");
    assert!(stats.records_with_dob > 650, "{stats:?}");
    assert!(stats.records_with_nationality > 600, "{stats:?}");
    assert!(stats.identifiers_of("passport") > 300, "{stats:?}");
    assert!(stats.skipped_country_names() <= 2, "{stats:?}");
}

#[test]
fn un_records_keep_names_scripts_dates_and_documents() {
    let (records, _) = import_un(&Options::default());
    let zidane = record(&records, "UN-QDi.001");
    assert_eq!(zidane.kind.as_deref(), Some("individual"));
    assert_eq!(
        zidane.names,
        [
            "MOHAMMED SALAHALDIN ABD EL HALIM ZIDANE",
            "محمد صلاح الدين عبدالحليم زيدان",
            "Sayf-Al Adl",
            "Muhamad Ibrahim Makkawi"
        ]
    );
    assert_eq!(zidane.nationalities, ["EG"]);
    assert_eq!(zidane.date_of_birth.as_deref(), Some("1963-04-11"));
    assert_eq!(zidane.other_dates_of_birth, ["1960-04-11"]);
    assert_eq!(zidane.programs, ["Al-Qaida"]);

    let bozize = record(&records, "UN-CFi.001");
    assert_eq!(bozize.nationalities, ["CF", "SS"]);
    assert_eq!(bozize.countries, ["UG", "CF"]);
    assert_eq!(
        ids(bozize),
        [
            id("passport", "D00002264", None),
            id("national_id", "M4800002143743", None)
        ]
    );

    let ri = record(&records, "UN-KPi.033");
    assert_eq!(ri.nationalities, ["KP"]);
    assert_eq!(ids(ri), [id("passport", "381310014", None)]);

    let entity = records
        .iter()
        .find(|r| r.kind.as_deref() == Some("organization"))
        .unwrap();
    assert!(entity.id.starts_with("UN-"), "{}", entity.id);
}

#[test]
fn both_lists_load_with_no_errors_and_round_trip() {
    let options = Options {
        measure: Some("SM-TEST-1".into()),
        weak_aliases: false,
    };
    let (mut records, _) = import_ofac(&options);
    records.extend(import_un(&options).0);
    let text = to_jsonl(&records).unwrap();
    // One line per record, then the trailer (count and hash of what precedes it).
    assert_eq!(text.lines().count(), 8976 + 1003 + 1);
    let trailer: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(trailer["count"], 8976 + 1003);

    let loaded = load_sources(&[(PathBuf::from("imported.jsonl"), text.clone())])
        .unwrap_or_else(|e| panic!("{} errors, first: {}", e.len(), e[0]));
    assert_eq!(loaded.len(), records.len());
    for (loaded, original) in loaded.iter().zip(&records) {
        assert_eq!(&loaded.record, original);
        assert_eq!(loaded.record.measure.as_deref(), Some("SM-TEST-1"));
    }
    for wanted in ["OFAC-10692", "UN-CFi.001"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("\"id\":\"{wanted}\"")))
            .unwrap();
        let back: Designation = serde_json::from_str(line).unwrap();
        assert_eq!(&back, record(&records, wanted));
        assert_eq!(serde_json::to_string(&back).unwrap(), line);
    }
    let ofac = loaded.iter().find(|d| d.record.id == "OFAC-10692").unwrap();
    assert_eq!(ofac.dates_of_birth.len(), 4);
    assert_eq!(ofac.nationalities.len(), 1);
}

#[test]
fn cli_writes_a_file_that_check_accepts() {
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("designations")).unwrap();
    std::fs::write(dir.path().join("p.cedar"), crate::support::BASELINE).unwrap();
    let out = dir.path().join("designations/lists.jsonl");
    let run = Command::new(bin)
        .args(["designations", "import", "--ofac-sdn"])
        .arg(fixture("sdn.csv"))
        .arg("--ofac-alt")
        .arg(fixture("alt.csv"))
        .arg("--ofac-add")
        .arg(fixture("add.csv"))
        .arg("--un")
        .arg(fixture(UN_FILE))
        .args(["--measure", "SM-X", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("OFAC-SDN: 8976 records"), "{stderr}");
    assert!(stderr.contains("UN: 1003 records"), "{stderr}");
    assert!(stderr.contains("skipped country names"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 9979 + 1);
    let (trailer, lines) = text
        .trim_end()
        .rsplit_once('\n')
        .map(|(l, t)| (t, l))
        .unwrap();
    assert!(
        trailer.starts_with("{\"count\":9979,\"sha256\":"),
        "{trailer}"
    );
    assert!(lines.lines().all(|l| l.contains("\"measure\":\"SM-X\"")));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("designations"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["lists.jsonl"]);

    let check = Command::new(bin)
        .arg("check")
        .arg(dir.path())
        .arg("--geo")
        .arg(crate::support::default_geo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.contains("9979 designations"), "{stdout}");
}

#[test]
fn cli_needs_a_list_and_reports_unreadable_files() {
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.jsonl");
    let none = Command::new(bin)
        .args(["designations", "import", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));

    let missing = Command::new(bin)
        .args(["designations", "import", "--un"])
        .arg(dir.path().join("absent.xml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("absent.xml"),
        "{stderr}"
    );
    assert!(!out.exists());

    let not_xml = dir.path().join("list.xml");
    std::fs::write(&not_xml, "<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL>").unwrap();
    let broken = Command::new(bin)
        .args(["designations", "import", "--un"])
        .arg(&not_xml)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(1));
    assert!(!out.exists());
}
