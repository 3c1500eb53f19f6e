//! The dispatch service's errors: the platform's shared ones
//! (`crm_platform::ServiceError`); the service has no refusals of its own
//! beyond its rules (`RuleViolation`) and denials.

pub type Error = crm_platform::ServiceError<crm_platform::service_error::NoRefusal>;

pub type Result<T, E = Error> = std::result::Result<T, E>;
