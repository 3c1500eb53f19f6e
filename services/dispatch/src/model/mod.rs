//! The dispatch model: vocabulary, the work order with its installation
//! lines and repair details, technicians, the lifecycle, priority and
//! ranking rules, the installed base, warranty and charges, cash hand-over
//! and who may do what. Pure: no SQL, no protobuf.

pub mod access;
pub mod base;
pub mod cash;
pub mod charges;
pub mod lifecycle;
pub mod metering;
pub mod planning;

use chrono::{DateTime, NaiveDate, Utc};
use crm_domain::{Money, ids::CustomerId};

use base::DeviceId;
use charges::PartLine;

crm_domain::typed_id!(
    /// A work order (DSP-2).
    WorkOrderId
);
crm_domain::typed_id!(
    /// A field technician (DSP-3).
    TechnicianId
);

pub(crate) use crm_domain::vocabulary;

vocabulary!(
    /// DSP-2 lifecycle state.
    State {
        Draft = "draft",
        PendingApproval = "pending_approval",
        Approved = "approved",
        Assigned = "assigned",
        EnRoute = "en_route",
        OnSite = "on_site",
        Completed = "completed",
        Closed = "closed",
        Cancelled = "cancelled",
    }
);
vocabulary!(
    /// DSP-2 work order types.
    Kind { Installation = "installation", Repair = "repair", Maintenance = "maintenance", Inspection = "inspection" }
);
vocabulary!(Urgency { Normal = "normal", Urgent = "urgent" });
vocabulary!(
    /// DSP-4, derived from urgency and service level.
    Priority { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
);
vocabulary!(
    /// The customer's CUS-8 service level at creation.
    ServiceLevel { General = "general", Key = "key", Special = "special" }
);

impl Kind {
    /// DSP-2: installation and repair orders are approved by the service
    /// manager before assignment; routine maintenance and inspection are
    /// planned work a dispatcher may release directly.
    pub fn needs_manager_approval(self) -> bool {
        matches!(self, Kind::Installation | Kind::Repair)
    }
}

pub use crm_domain::RuleViolation;

/// One vehicle of an installation request (DSP-2): an order line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub plate: String,
    pub driver_name: String,
    pub driver_phone: String,
    pub device_model: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairDetails {
    pub device_model: String,
    pub purchase_date: NaiveDate,
    pub fault: String,
    pub device_serial: String,
}

/// What a kind of order carries besides the common fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Details {
    Installation { request_reference: String, vehicles: Vec<Vehicle> },
    Repair(RepairDetails),
    Maintenance,
    Inspection,
}

impl Details {
    pub fn kind(&self) -> Kind {
        match self {
            Details::Installation { .. } => Kind::Installation,
            Details::Repair(_) => Kind::Repair,
            Details::Maintenance => Kind::Maintenance,
            Details::Inspection => Kind::Inspection,
        }
    }
}

/// A validated CreateWorkOrder request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkOrder {
    pub customer_id: CustomerId,
    pub urgency: Urgency,
    pub site_address: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub description: String,
    pub required_skills: Vec<String>,
    pub territory: String,
    pub details: Details,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkOrder {
    pub id: WorkOrderId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub service_level: ServiceLevel,
    pub state: State,
    pub urgency: Urgency,
    pub priority: Priority,
    pub site_address: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub description: String,
    pub required_skills: Vec<String>,
    pub territory: String,
    /// The customer's branch when the order was created (CUS-13: who in
    /// the office sees it); empty for orders of older releases and for
    /// repairs raised by meter readings.
    /// The invoice billing raised for the completed order and how much of
    /// it is paid (from billing's events, X-2).
    pub invoice: Option<OrderInvoice>,
    pub branch: String,
    pub details: Details,
    pub technician_id: Option<TechnicianId>,
    pub scheduled_on: Option<NaiveDate>,
    pub parts_due_at: Option<DateTime<Utc>>,
    pub checklist_confirmed_by: Option<String>,
    pub checklist_confirmed_at: Option<DateTime<Utc>>,
    pub work_done: String,
    pub signed_off_by: String,
    pub cancel_reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Loaded for a single order; empty in lists.
    pub history: Vec<Step>,
    /// DSP-5/DSP-6, set at completion.
    pub completion: Option<Completion>,
}

/// The invoice of a completed work order as billing last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInvoice {
    pub id: uuid::Uuid,
    pub number: String,
    /// issued, partly_paid or paid.
    pub status: String,
    pub total: Money,
    pub paid: Money,
}

/// What completion recorded (DSP-5, DSP-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub device_id: Option<DeviceId>,
    pub in_warranty: bool,
    /// Loaded for a single order; empty in lists.
    pub parts: Vec<PartLine>,
    pub amount_due: Money,
    pub collected: Money,
    /// Labour on site, in minutes (DSP-5).
    pub labour_minutes: i32,
    /// What the labour was charged, when a labour rate was set and the work
    /// was out of warranty (part of `amount_due`).
    pub labour_charge: Option<Money>,
}

impl WorkOrder {
    /// A new order in `draft` for a customer served at `level`.
    pub fn create(new: NewWorkOrder, customer_name: String, level: ServiceLevel, by: &str, at: DateTime<Utc>) -> Self {
        Self {
            id: WorkOrderId::new(),
            customer_id: new.customer_id,
            customer_name,
            service_level: level,
            state: State::Draft,
            urgency: new.urgency,
            priority: planning::priority(new.urgency, level),
            site_address: new.site_address,
            contact_name: new.contact_name,
            contact_phone: new.contact_phone,
            description: new.description,
            required_skills: new.required_skills,
            territory: new.territory,
            branch: String::new(),
            invoice: None,
            details: new.details,
            technician_id: None,
            scheduled_on: None,
            parts_due_at: None,
            checklist_confirmed_by: None,
            checklist_confirmed_at: None,
            work_done: String::new(),
            signed_off_by: String::new(),
            cancel_reason: String::new(),
            created_by: by.to_string(),
            created_at: at,
            updated_at: at,
            version: 1,
            history: vec![],
            completion: None,
        }
    }

    pub fn kind(&self) -> Kind {
        self.details.kind()
    }

    pub fn etag(&self) -> String {
        crm_domain::etag(self.version)
    }

    /// The purchase date the caller gave for a repair.
    pub fn purchase_date(&self) -> Option<NaiveDate> {
        match &self.details {
            Details::Repair(r) => Some(r.purchase_date),
            _ => None,
        }
    }

    /// DSP-3: the technician leaves only with the checklist confirmed.
    pub fn check_ready_to_travel(&self) -> Result<(), RuleViolation> {
        if self.checklist_confirmed_at.is_none() {
            return Err(RuleViolation::new(
                "CHECKLIST_NOT_CONFIRMED",
                "confirm the pre-departure checklist (order details, tools, spare parts, documents) before leaving (DSP-3)",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technician {
    pub id: TechnicianId,
    pub user_sub: String,
    pub display_name: String,
    pub skills: Vec<String>,
    pub territory: String,
    pub daily_capacity: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl Technician {
    pub fn etag(&self) -> String {
        crm_domain::etag(self.version)
    }
}

/// DSP-2, CUS-11: a terminated customer (or one whose termination has
/// started) gets no new work and no new installations.
pub fn customer_terminated() -> RuleViolation {
    RuleViolation::new("CUSTOMER_TERMINATED", "the customer is terminated; no new work is taken for them (DSP-2)")
}

/// One recorded step.
pub type Step = crm_domain::history::Step<State>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip_through_their_stored_form() {
        use crm_domain::check::vocabulary_round_trips;
        vocabulary_round_trips(State::ALL, State::as_str, State::from_db);
        vocabulary_round_trips(Kind::ALL, Kind::as_str, Kind::from_db);
        vocabulary_round_trips(Urgency::ALL, Urgency::as_str, Urgency::from_db);
        vocabulary_round_trips(Priority::ALL, Priority::as_str, Priority::from_db);
        vocabulary_round_trips(ServiceLevel::ALL, ServiceLevel::as_str, ServiceLevel::from_db);
        assert_eq!(State::from_db("scheduled"), None);
    }

    #[test]
    fn only_installation_and_repair_need_the_service_manager() {
        let need: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| k.needs_manager_approval()).collect();
        assert_eq!(need, [Kind::Installation, Kind::Repair]);
    }
}
