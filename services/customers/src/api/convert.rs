//! The edge: protobuf ⇄ model. Requests are validated here on receipt (every
//! bad field reported at once, named by its path); the model never sees a
//! prost type and responses are built from model values only.

use crm_domain::{Invalid, ids::CustomerId, page, text};
use crm_platform::{Violations, error::parsed, proto_time};
use crm_proto::customers::v1 as pb;
use tonic::Status;

use crate::model::termination::{StepOutcome, TerminationReason, TerminationState};
use crate::{
    model::{
        Address, AddressKind, Contact, Customer, DemandGrade, DuplicateCandidate, DuplicateReason, PartyKind,
        ServiceLevel, SizeBand, SourceChannel, Stage, ValueTier,
        input::{self, AddressPatch, ContactPatch, CustomerPatch, NewAddress, NewContact, NewCustomer},
    },
    store::ListFilter,
};

crm_platform::enum_map!(pub(crate) party_kind, party_kind_pb, pb::PartyKind, PartyKind { Person <=> Person, Organization <=> Organization });
crm_platform::enum_map!(pub(crate) size_band,
    size_band_pb,
    pb::SizeBand,
    SizeBand { Micro <=> Micro, Small <=> Small, Medium <=> Medium, Large <=> Large });
crm_platform::enum_map!(pub(crate) source_channel,
    source_channel_pb,
    pb::SourceChannel,
    SourceChannel { TradeShow <=> TradeShow, IndustryPress <=> IndustryPress, Internet <=> Internet, IndustryAssociation <=> IndustryAssociation, RetailBrandListing <=> RetailBrandListing, PartnerReferral <=> PartnerReferral, MarketingCampaign <=> MarketingCampaign, WalkIn <=> WalkIn });
crm_platform::enum_map!(pub(crate) grade, grade_pb, pb::DemandGrade, DemandGrade { A <=> A, B <=> B, C <=> C });
crm_platform::enum_map!(pub(crate) value_tier,
    value_tier_pb,
    pb::ValueTier,
    ValueTier { Potential <=> Potential, General <=> General, Key <=> Key, Vip <=> Vip });
crm_platform::enum_map!(pub(crate) termination_reason,
    termination_reason_pb,
    pb::TerminationReason,
    TerminationReason { StoppedBuying <=> StoppedBuying, RulesOrEthics <=> RulesOrEthics, OfferNoLongerFits <=> OfferNoLongerFits, RelationshipBroken <=> RelationshipBroken, MarketExit <=> MarketExit });
crm_platform::enum_map!(pub(crate) termination_state,
    termination_state_pb,
    pb::TerminationState,
    TerminationState { Requested <=> Requested, Notice <=> Notice, Clearing <=> Clearing, Terminated <=> Terminated, Rejected <=> Rejected });
/// Steps are only ever output.
pub(crate) fn step_outcome_pb(o: StepOutcome) -> i32 {
    (match o {
        StepOutcome::Pending => pb::StepOutcome::Pending,
        StepOutcome::Done => pb::StepOutcome::Done,
        StepOutcome::Held => pb::StepOutcome::Held,
    }) as i32
}
crm_platform::enum_map!(pub(crate) service_level,
    service_level_pb,
    pb::ServiceLevel,
    ServiceLevel { General <=> General, Key <=> Key, Special <=> Special });
crm_platform::enum_map!(pub(crate) stage,
    stage_pb,
    pb::LifecycleStage,
    Stage { Prospect <=> Prospect, Active <=> Active, Dormant <=> Dormant, Terminated <=> Terminated });
crm_platform::enum_map!(pub(crate) address_kind,
    address_kind_pb,
    pb::AddressKind,
    AddressKind { HeadOffice <=> HeadOffice, Branch <=> Branch, ServiceSite <=> ServiceSite, Home <=> Home });

pub(crate) use crm_platform::edge::required;

pub(crate) fn customer_id(field: &str, s: &str) -> Result<CustomerId, Status> {
    CustomerId::parse(s).map_err(|e| crm_platform::error::invalid_argument(field, e.reason))
}

/// An optional etag: empty means "don't check".
pub(crate) fn etag(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn new_customer(req: &pb::CreateCustomerRequest) -> Result<NewCustomer, Status> {
    customer_input(req.customer.as_ref())
}

/// A customer to register (CreateCustomer, and each row of an import),
/// every bad field reported at once under `customer.`.
pub(crate) fn customer_input(c: Option<&pb::Customer>) -> Result<NewCustomer, Status> {
    let mut v = Violations::default();
    let Some(c) = c else {
        v.add("customer", "is required");
        v.finish()?;
        return Err(Status::internal("unreachable"));
    };
    let f = |name: &str| format!("customer.{name}");
    let kind = v.check(&f("kind"), required(party_kind(c.kind)));
    let display_name = v.check(&f("display_name"), input::display_name(&c.display_name));
    let legal_name = v.check(&f("legal_name"), input::legal_name(&c.legal_name));
    let registration_number = v.check(&f("registration_number"), input::registration_number(&c.registration_number));
    let industry = v.check(&f("industry"), input::short_text(&c.industry));
    let size_band = v.check(&f("size_band"), size_band(c.size_band));
    let region = v.check(&f("region"), input::short_text(&c.region));
    let summary = v.check(&f("summary"), input::summary(&c.summary));
    let source_channel = v.check(&f("source_channel"), source_channel(c.source_channel));
    let tags = v.check(&f("tags"), input::tags(&c.tags));
    let phone = v.check(&f("phone"), input::optional_phone(&c.phone));
    let email = v.check(&f("email"), input::optional_email(&c.email));
    let owner_id = v.check(&f("owner_id"), text::single_line(&c.owner_id, 100)).map(non_empty);
    let branch = v.check(&f("branch"), text::single_line(&c.branch, 100)).map(non_empty);
    let referred_by = v.check(&f("referred_by_customer_id"), input::optional_customer_id(&c.referred_by_customer_id));
    if c.contacts.len() > input::MAX_CONTACTS {
        v.add(&f("contacts"), format!("at most {} contacts", input::MAX_CONTACTS));
    }
    if c.addresses.len() > input::MAX_ADDRESSES {
        v.add(&f("addresses"), format!("at most {} addresses", input::MAX_ADDRESSES));
    }
    let collected_at = match &c.collect_time {
        Some(t) => v.check(&f("collect_time"), proto_time::from_proto(t).and_then(not_in_future)),
        None => Some(chrono::Utc::now()),
    };
    let contacts: Vec<_> = c
        .contacts
        .iter()
        .enumerate()
        .filter_map(|(i, k)| new_contact(&mut v, &format!("customer.contacts[{i}]"), k))
        .collect();
    let addresses: Vec<_> = c
        .addresses
        .iter()
        .enumerate()
        .filter_map(|(i, a)| new_address(&mut v, &format!("customer.addresses[{i}]"), a))
        .collect();
    v.finish()?;
    // finish() returned early on any violation, so every field is present.
    Ok(NewCustomer {
        kind: parsed(kind)?,
        display_name: parsed(display_name)?,
        legal_name: parsed(legal_name)?,
        registration_number: parsed(registration_number)?,
        industry: parsed(industry)?,
        size_band: parsed(size_band)?,
        region: parsed(region)?,
        summary: parsed(summary)?,
        source_channel: parsed(source_channel)?,
        tags: parsed(tags)?,
        phone: parsed(phone)?,
        email: parsed(email)?,
        owner_id: parsed(owner_id)?,
        branch: parsed(branch)?,
        referred_by: parsed(referred_by)?,
        contacts,
        addresses,
        collected_at,
    })
}

/// Times of past events may not lie in the future (5 minutes of clock skew
/// are tolerated).
pub(crate) fn not_in_future(t: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, Invalid> {
    if t > chrono::Utc::now() + chrono::Duration::minutes(5) {
        Err(Invalid::new("must not be in the future"))
    } else {
        Ok(t)
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub(crate) fn new_contact(v: &mut Violations, at: &str, c: &pb::Contact) -> Option<NewContact> {
    let name = v.check(&format!("{at}.name"), text::required(&c.name, 100));
    let position = v.check(&format!("{at}.position"), input::short_text(&c.position));
    let phones = v.check(&format!("{at}.phones"), input::phones(&c.phones));
    let email = v.check(&format!("{at}.email"), input::optional_email(&c.email));
    Some(NewContact {
        name: name?,
        position: position?,
        phones: phones?,
        email: email?,
        decision_maker: c.decision_maker,
    })
}

pub(crate) fn new_address(v: &mut Violations, at: &str, a: &pb::Address) -> Option<NewAddress> {
    let kind = v.check(&format!("{at}.kind"), required(address_kind(a.kind)));
    let province = v.check(&format!("{at}.province"), input::short_text(&a.province));
    let city = v.check(&format!("{at}.city"), input::short_text(&a.city));
    let district = v.check(&format!("{at}.district"), input::short_text(&a.district));
    let street = v.check(&format!("{at}.street"), input::street(&a.street));
    let postal_code = v.check(&format!("{at}.postal_code"), text::single_line(&a.postal_code, 20));
    Some(NewAddress {
        kind: kind?,
        province: province?,
        city: city?,
        district: district?,
        street: street?,
        postal_code: postal_code?,
    })
}

/// Paths of a field mask, required and each one known.
fn mask_paths<'a>(
    v: &mut Violations,
    mask: Option<&'a prost_types::FieldMask>,
    known: &[&str],
    elsewhere: &[(&str, &str)],
) -> Vec<&'a str> {
    let paths: Vec<&str> = mask.map(|m| m.paths.iter().map(String::as_str).collect()).unwrap_or_default();
    if paths.is_empty() {
        v.add("update_mask", "is required: name the fields to change");
    }
    for p in &paths {
        if let Some((_, rpc)) = elsewhere.iter().find(|(f, _)| f == p) {
            v.add("update_mask", format!("{p} is changed with {rpc}, not an update"));
        } else if !known.contains(p) {
            v.add("update_mask", format!("unknown or read-only field {p:?}"));
        }
    }
    paths
}

pub(crate) fn customer_patch(req: &pb::UpdateCustomerRequest) -> Result<CustomerPatch, Status> {
    let mut v = Violations::default();
    let c = req.customer.clone().unwrap_or_default();
    let paths = mask_paths(
        &mut v,
        req.update_mask.as_ref(),
        &[
            "kind",
            "display_name",
            "legal_name",
            "registration_number",
            "industry",
            "size_band",
            "region",
            "summary",
            "source_channel",
            "tags",
            "phone",
            "email",
            "referred_by_customer_id",
        ],
        &[
            ("owner_id", "AssignOwner"),
            ("branch", "AssignOwner"),
            ("grade", "SetClassification"),
            ("value_tier", "SetClassification"),
            ("service_level", "SetClassification"),
            ("stage", "ChangeStage"),
            ("contacts", "AddContact/UpdateContact/RemoveContact"),
            ("addresses", "AddAddress/UpdateAddress/RemoveAddress"),
        ],
    );
    let mut p = CustomerPatch::default();
    for path in paths {
        let field = format!("customer.{path}");
        match path {
            "kind" => p.kind = v.check(&field, required(party_kind(c.kind))),
            "display_name" => p.display_name = v.check(&field, input::display_name(&c.display_name)),
            "legal_name" => p.legal_name = v.check(&field, input::legal_name(&c.legal_name)),
            "registration_number" => {
                p.registration_number = v.check(&field, input::registration_number(&c.registration_number))
            }
            "industry" => p.industry = v.check(&field, input::short_text(&c.industry)),
            "size_band" => p.size_band = v.check(&field, size_band(c.size_band)),
            "region" => p.region = v.check(&field, input::short_text(&c.region)),
            "summary" => p.summary = v.check(&field, input::summary(&c.summary)),
            "source_channel" => p.source_channel = v.check(&field, source_channel(c.source_channel)),
            "tags" => p.tags = v.check(&field, input::tags(&c.tags)),
            "phone" => p.phone = v.check(&field, input::optional_phone(&c.phone)),
            "email" => p.email = v.check(&field, input::optional_email(&c.email)),
            "referred_by_customer_id" => {
                p.referred_by = v.check(&field, input::optional_customer_id(&c.referred_by_customer_id))
            }
            _ => {}
        }
    }
    v.finish()?;
    Ok(p)
}

pub(crate) fn contact_patch(mask: Option<&prost_types::FieldMask>, c: &pb::Contact) -> Result<ContactPatch, Status> {
    let mut v = Violations::default();
    let paths = mask_paths(&mut v, mask, &["name", "position", "phones", "email", "decision_maker"], &[]);
    let mut p = ContactPatch::default();
    for path in paths {
        let field = format!("contact.{path}");
        match path {
            "name" => p.name = v.check(&field, text::required(&c.name, 100)),
            "position" => p.position = v.check(&field, input::short_text(&c.position)),
            "phones" => p.phones = v.check(&field, input::phones(&c.phones)),
            "email" => p.email = v.check(&field, input::optional_email(&c.email)),
            "decision_maker" => p.decision_maker = Some(c.decision_maker),
            _ => {}
        }
    }
    v.finish()?;
    Ok(p)
}

pub(crate) fn address_patch(mask: Option<&prost_types::FieldMask>, a: &pb::Address) -> Result<AddressPatch, Status> {
    let mut v = Violations::default();
    let paths = mask_paths(&mut v, mask, &["kind", "province", "city", "district", "street", "postal_code"], &[]);
    let mut p = AddressPatch::default();
    for path in paths {
        let field = format!("address.{path}");
        match path {
            "kind" => p.kind = v.check(&field, required(address_kind(a.kind))),
            "province" => p.province = v.check(&field, input::short_text(&a.province)),
            "city" => p.city = v.check(&field, input::short_text(&a.city)),
            "district" => p.district = v.check(&field, input::short_text(&a.district)),
            "street" => p.street = v.check(&field, input::street(&a.street)),
            "postal_code" => p.postal_code = v.check(&field, text::single_line(&a.postal_code, 20)),
            _ => {}
        }
    }
    v.finish()?;
    Ok(p)
}

/// List filters plus a fingerprint that ties page tokens to them.
pub(crate) fn list_filter(req: &pb::ListCustomersRequest) -> Result<(ListFilter, u64), Status> {
    let mut v = Violations::default();
    let s = |v: &mut Violations, field: &str, x: &str| v.check(field, text::single_line(x, 100)).and_then(non_empty);
    let f = ListFilter {
        owner_id: s(&mut v, "owner_id", &req.owner_id),
        branch: s(&mut v, "branch", &req.branch),
        grade: v.check("grade", grade(req.grade)).flatten(),
        value_tier: v.check("value_tier", value_tier(req.value_tier)).flatten(),
        service_level: v.check("service_level", service_level(req.service_level)).flatten(),
        stage: v.check("stage", stage(req.stage)).flatten(),
        region: s(&mut v, "region", &req.region),
        industry: s(&mut v, "industry", &req.industry),
        tag: s(&mut v, "tag", &req.tag),
    };
    v.finish()?;
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let fp = page::fingerprint(&[
        opt(&f.owner_id).as_bytes(),
        opt(&f.branch).as_bytes(),
        f.grade.map(|g| g.as_str()).unwrap_or_default().as_bytes(),
        f.value_tier.map(|g| g.as_str()).unwrap_or_default().as_bytes(),
        f.service_level.map(|g| g.as_str()).unwrap_or_default().as_bytes(),
        f.stage.map(|g| g.as_str()).unwrap_or_default().as_bytes(),
        opt(&f.region).as_bytes(),
        opt(&f.industry).as_bytes(),
        opt(&f.tag).as_bytes(),
    ]);
    Ok((f, fp))
}

// ---- model → proto -----------------------------------------------------------

pub(crate) fn customer(c: &Customer) -> pb::Customer {
    pb::Customer {
        id: c.id.to_string(),
        kind: party_kind_pb(c.kind),
        display_name: c.display_name.clone(),
        legal_name: c.legal_name.clone(),
        registration_number: c.registration_number.clone().unwrap_or_default(),
        industry: c.industry.clone(),
        size_band: c.size_band.map(size_band_pb).unwrap_or_default(),
        region: c.region.clone(),
        summary: c.summary.clone(),
        source_channel: c.source_channel.map(source_channel_pb).unwrap_or_default(),
        tags: c.tags.clone(),
        phone: c.phone.clone().unwrap_or_default(),
        email: c.email.clone().unwrap_or_default(),
        owner_id: c.owner_id.clone(),
        branch: c.branch.clone(),
        grade: grade_pb(c.classification.grade),
        value_tier: value_tier_pb(c.classification.value_tier),
        service_level: service_level_pb(c.classification.service_level),
        stage: stage_pb(c.stage),
        referred_by_customer_id: c.referred_by.map(|r| r.to_string()).unwrap_or_default(),
        contacts: c.contacts.iter().map(contact).collect(),
        addresses: c.addresses.iter().map(address).collect(),
        created_by: c.created_by.clone(),
        create_time: Some(proto_time::to_proto(c.created_at)),
        update_time: Some(proto_time::to_proto(c.updated_at)),
        etag: c.etag(),
        collect_time: c.collected_at.map(proto_time::to_proto),
        entry_late: c.entry_late,
        assign_time: c.assigned_at.map(proto_time::to_proto),
        first_contact_due_time: c.first_contact_due.map(proto_time::to_proto),
        first_contact_time: c.first_contact_at.map(proto_time::to_proto),
        merged_from: c.merged_from.iter().map(ToString::to_string).collect(),
        // CUS-11: a terminated customer is do-not-contact and do-not-market.
        do_not_contact: c.stage == Stage::Terminated,
        do_not_market: c.stage == Stage::Terminated,
    }
}

pub(crate) fn contact(c: &Contact) -> pb::Contact {
    pb::Contact {
        id: c.id.to_string(),
        name: c.name.clone(),
        position: c.position.clone(),
        phones: c.phones.clone(),
        email: c.email.clone().unwrap_or_default(),
        decision_maker: c.decision_maker,
    }
}

pub(crate) fn address(a: &Address) -> pb::Address {
    pb::Address {
        id: a.id.to_string(),
        kind: address_kind_pb(a.kind),
        province: a.province.clone(),
        city: a.city.clone(),
        district: a.district.clone(),
        street: a.street.clone(),
        postal_code: a.postal_code.clone(),
    }
}

pub(crate) fn duplicate(d: &DuplicateCandidate) -> pb::DuplicateCandidate {
    pb::DuplicateCandidate {
        customer_id: d.customer_id.to_string(),
        display_name: d.display_name.clone(),
        region: d.region.clone(),
        owner_id: d.owner_id.clone(),
        reasons: d.reasons.iter().map(|r| duplicate_reason(*r)).collect(),
        name_similarity: d.name_similarity,
    }
}

pub(crate) fn duplicate_reason(r: DuplicateReason) -> i32 {
    (match r {
        DuplicateReason::Phone => pb::DuplicateReason::Phone,
        DuplicateReason::Email => pb::DuplicateReason::Email,
        DuplicateReason::RegistrationNumber => pb::DuplicateReason::RegistrationNumber,
        DuplicateReason::SimilarName => pb::DuplicateReason::SimilarName,
    }) as i32
}
