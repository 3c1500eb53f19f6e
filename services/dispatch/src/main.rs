//! `crm-dispatch`: the dispatch service alone, configured by flags and `CRM_*`
//! variables (see docs/operations.md).

fn main() -> std::process::ExitCode {
    crm_platform::service::binary(&crm_dispatch::SERVICE)
}
