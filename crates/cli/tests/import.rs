//! `crm import customers FILE.csv` as a user runs it, against the customers
//! service started in-process on its own database: a Chinese customer book
//! as Excel saves it, bad rows named by sheet row and column, duplicates,
//! a second run that creates nothing twice, and the exit codes.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{path::PathBuf, time::Duration};

use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use crm_testkit::{Bearer, Role, TEST_JWT_SECRET, TestService};

const CRM: &str = env!("CARGO_BIN_EXE_crm");

/// Row 1 is the header. Row 3's mobile is typed in full-width digits; row 5
/// is blank; row 6 has a kind no customer has and a broken email; row 7 is
/// row 3's mobile again, typed another way.
const BOOK: &str = "\u{feff}kind,display_name,legal_name,registration_number,phone,email,region,branch,industry,\
size_band,source_channel,tags,contact_name,contact_position,contact_phone,address_province,address_city,\
address_district,address_street\r\n\
企业,西湖燃气,杭州西湖燃气有限公司,91330106MA2B3C4D5E,0571-88886666,service@xihugas.cn,CN-ZJ,hz,燃气,中型,展会,\
重点客户；燃气,王建国,总经理,13805718888,浙江省,杭州市,西湖区,\"文三路90号\r\n东部软件园1号楼\"\r\n\
个人,李明,李明,,１３９５７１２３４５６,liming@example.cn,CN-ZJ,hz,,,转介绍,,,,,,,,\r\n\
企业,宁波港通物流,宁波港通物流有限公司,９１３３０２００ＭＡ２８Ｘ１２３４,0574-87654321,,CN-ZJ,hz,物流,small,\
trade_show,,陈静,采购经理,0574-87654322,浙江省,宁波市,北仑区,新碶街道明州路1号\r\n\
,,,,,,,,,,,,,,,,,,\r\n\
集体,余杭农机合作社,,,0571-86180000,zhaoliu@,CN-ZJ,hz,,,,,,,,,,,\r\n\
企业,绍兴柯桥纺织,,,139-5712-3456,,CN-ZJ,hz,纺织,,,,,,,,,,\r\n\
企业,温州瓯海眼镜厂,,,18657712345,sales@ouhai-glasses.cn,CN-ZJ,hz,制造,micro,internet,,,,,,,,\r\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// A count of the summary, `  created      4`.
    fn count(&self, label: &str) -> i64 {
        self.stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label)?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in\n{}", self.stdout))
    }

    fn request_id(&self) -> String {
        let line = self.stdout.lines().next().unwrap_or_default();
        line.split(" as import ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default().to_string()
    }
}

/// `crm import customers FILE ARGS…` with nothing from the caller's
/// environment; `env` is added.
async fn crm_import(file: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(CRM);
    cmd.args(["import", "customers"]).arg(file).args(args);
    for var in ["CRM_TOKEN", "CRM_CUSTOMERS_URL", "CRM_JWT_SECRET", "CRM_HOME", "CRM_TIME_ZONE"] {
        cmd.env_remove(var);
    }
    // No ./.crm/jwt-secret to fall back on.
    cmd.env("CRM_HOME", std::env::temp_dir().join("crm-import-test-no-home"));
    cmd.envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("crm import finished").unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write_book(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-import-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn a_chinese_book_is_imported_by_sheet_row_and_column_and_a_second_run_creates_nothing_twice() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let pool = svc.db.pool().await;
    let token = svc.token(&[Role::Admin], "admin", None);
    let file = write_book("客户名单.csv", BOOK.as_bytes());
    let url = svc.url();

    let first = crm_import(&file, &["--addr", &url, "--token", &token, "--batch", "2"], &[]).await;
    assert_eq!(first.code, 1, "some rows were not imported\n{}{}", first.stdout, first.stderr);
    let counts: Vec<i64> = ["rows", "created", "invalid", "duplicates", "already settled", "blank rows"]
        .iter()
        .map(|l| first.count(l))
        .collect();
    assert_eq!(counts, [6, 4, 1, 1, 0, 1], "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains(r#"row 6, field kind: "集体" is not a kind; use one of person (个人), organization (企业)"#),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("row 6, field email: "), "{}", first.stdout);
    assert!(first.stdout.contains("row 7: same phone as row 3\n"), "{}", first.stdout);

    // What was created is what the rows said, normalized by the service.
    let mut admin = CustomerServiceClient::with_interceptor(svc.channel().await, Bearer::new(&token));
    let customers = admin
        .list_customers(pb::ListCustomersRequest { page_size: 100, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .customers;
    let by_name = |name: &str| customers.iter().find(|c| c.display_name == name).expect(name);
    let mut names: Vec<&str> = customers.iter().map(|c| c.display_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["宁波港通物流", "李明", "温州瓯海眼镜厂", "西湖燃气"]);
    let xihu = by_name("西湖燃气");
    assert_eq!(xihu.phone, "+8657188886666", "a landline with a 3-digit area code");
    assert_eq!(xihu.tags, ["重点客户", "燃气"]);
    assert_eq!(xihu.contacts[0].phones, ["+8613805718888"]);
    assert_eq!(xihu.addresses[0].street, "文三路90号\r\n东部软件园1号楼");
    assert_eq!(xihu.addresses[0].kind, pb::AddressKind::HeadOffice as i32);
    assert_eq!(by_name("李明").phone, "+8613957123456", "full-width digits");
    assert_eq!(by_name("李明").kind, pb::PartyKind::Person as i32);
    assert_eq!(by_name("宁波港通物流").registration_number, "91330200MA28X1234");
    assert_eq!(by_name("宁波港通物流").size_band, pb::SizeBand::Small as i32);

    // The same file again, with a token minted from the key: the same
    // import, replayed.
    let again = crm_import(&file, &["--addr", &url], &[("CRM_JWT_SECRET", TEST_JWT_SECRET)]).await;
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert_eq!(again.request_id(), first.request_id());
    assert_eq!((again.count("rows"), again.count("created"), again.count("already settled")), (6, 4, 6));
    assert!(again.stdout.contains("was done before; nothing new was written"), "{}", again.stdout);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM customers.customers").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 4);

    // Another import of the same rows finds every good one registered.
    let other = crm_import(&file, &["--addr", &url, "--token", &token, "--duplicates", "skip"], &[]).await;
    assert_ne!(other.request_id(), first.request_id());
    assert_eq!(
        (other.count("created"), other.count("duplicates"), other.count("invalid")),
        (0, 5, 1),
        "{}",
        other.stdout
    );
    assert!(!other.stdout.contains("Duplicates"), "skip lists none\n{}", other.stdout);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM customers.customers").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 4);
}

#[tokio::test]
async fn a_book_of_good_rows_exits_0() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let token = svc.token(&[Role::SalesManager], "mgr-hz", Some("hz"));
    let file = write_book(
        "ok.csv",
        "kind,display_name,phone\n企业,萧山热电,0571-82660000\n个人,张伟,13705711234\n".as_bytes(),
    );
    let run = crm_import(&file, &["--addr", &svc.url(), "--token", &token], &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.count("created"), 2, "{}", run.stdout);
}

#[tokio::test]
async fn bad_files_are_refused_before_anything_is_sent() {
    // Nothing listens here: a file refused up front never gets that far.
    let nowhere = ["--addr", "http://127.0.0.1:9", "--token", "t"];
    let unknown = write_book("unknown.csv", "kind,display_name,fax,手机\n企业,西湖燃气,1,2\n".as_bytes());
    let run = crm_import(&unknown, &nowhere, &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(r#"unknown columns "fax", "手机""#), "{}", run.stderr);

    let ragged = write_book("ragged.csv", "kind,display_name\n企业,甲\n企业,乙,多余\n".as_bytes());
    let run = crm_import(&ragged, &nowhere, &[]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("row 3 has 3 cells but the header has 2 columns"), "{}", run.stderr);

    // 企业,甲 in GBK, as Excel's plain "CSV" saves it in China.
    let gbk = write_book("gbk.csv", b"kind,display_name\n\xc6\xf3\xd2\xb5,\xbc\xd7\n");
    let run = crm_import(&gbk, &nowhere, &[]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("row 2 is not UTF-8"), "{}", run.stderr);

    let run = crm_import(&PathBuf::from("/nonexistent/book.csv"), &nowhere, &[]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot read /nonexistent/book.csv"), "{}", run.stderr);

    // No token, and no key to mint one.
    let good = write_book("good.csv", "kind,display_name\n企业,甲\n".as_bytes());
    let run = crm_import(&good, &["--addr", "http://127.0.0.1:9"], &[]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no --token or CRM_TOKEN"), "{}", run.stderr);

    let run = crm_import(&good, &["--batch", "0"], &[]).await;
    assert_eq!(run.code, 2, "clap's usage error");
}

#[tokio::test]
async fn a_failed_call_exits_3_with_its_grpc_code() {
    let svc = TestService::spawn(&crm_customers::SERVICE).await;
    let file = write_book("book.csv", "kind,display_name,branch\n企业,西湖燃气,hz\n".as_bytes());
    let sales = svc.token(&[Role::Sales], "s1", Some("hz"));
    let run = crm_import(&file, &["--addr", &svc.url(), "--token", &sales], &[]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("PERMISSION_DENIED (7)"), "{}", run.stderr);

    let run = crm_import(&file, &["--addr", "http://127.0.0.1:9", "--token", &sales], &[]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("cannot reach the customers service at http://127.0.0.1:9"), "{}", run.stderr);
}
