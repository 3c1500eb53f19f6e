//! Contacts and addresses of a customer (CUS-1).

use crm_proto::customers::v1 as pb;
use tonic::Code;

use crate::helpers::{App, assert_invalid, mask, org, rid};

#[tokio::test]
async fn contacts_are_added_updated_and_removed() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "CN-BJ")).await;

    let added = s1
        .add_contact(pb::AddContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: Some(pb::Contact {
                name: "李四".into(),
                position: "总经理".into(),
                phones: vec!["13900139000".into(), "010-8888 6666".into()],
                email: "Li.Si@JIA.cn".into(),
                decision_maker: true,
                ..Default::default()
            }),
            etag: c.etag.clone(),
        })
        .await
        .expect("add")
        .into_inner();
    let contact = added.contact.expect("contact");
    let after_add = added.customer.expect("customer");
    assert_eq!(contact.phones, vec!["+8613900139000".to_string(), "+861088886666".to_string()]);
    assert_eq!(contact.email, "li.si@jia.cn");
    assert_eq!(after_add.contacts, vec![contact.clone()]);
    assert_ne!(after_add.etag, c.etag, "the etag covers contacts");

    let updated = s1
        .update_contact(pb::UpdateContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: Some(pb::Contact {
                id: contact.id.clone(),
                position: "董事长".into(),
                decision_maker: false,
                ..Default::default()
            }),
            update_mask: mask(&["position", "decision_maker"]),
            etag: after_add.etag.clone(),
        })
        .await
        .expect("update")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(updated.contacts[0].position, "董事长");
    assert!(!updated.contacts[0].decision_maker);
    assert_eq!(updated.contacts[0].name, "李四");

    // A stale etag changes nothing.
    let err = s1
        .remove_contact(pb::RemoveContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact_id: contact.id.clone(),
            etag: after_add.etag,
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(app.count("contacts").await, 1);

    let removed = s1
        .remove_contact(pb::RemoveContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact_id: contact.id.clone(),
            etag: updated.etag,
        })
        .await
        .expect("remove")
        .into_inner()
        .customer
        .expect("customer");
    assert!(removed.contacts.is_empty());
    assert_eq!(app.count("contacts").await, 0);

    let err = s1
        .remove_contact(pb::RemoveContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact_id: contact.id,
            etag: String::new(),
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn bad_contacts_are_refused_with_their_field() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "CN-BJ")).await;
    let err = s1
        .add_contact(pb::AddContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: Some(pb::Contact {
                name: " ".into(),
                phones: vec!["555".into()],
                email: "a@b".into(),
                ..Default::default()
            }),
            etag: String::new(),
        })
        .await
        .expect_err("bad");
    assert_invalid(&err, "contact.name");
    assert_invalid(&err, "contact.phones");
    assert_invalid(&err, "contact.email");
    let err = s1
        .add_contact(pb::AddContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: None,
            etag: String::new(),
        })
        .await
        .expect_err("missing");
    assert_invalid(&err, "contact");
    let err = s1
        .add_contact(pb::AddContactRequest {
            request_id: rid(),
            customer_id: uuid::Uuid::now_v7().to_string(),
            contact: Some(pb::Contact { name: "x".into(), ..Default::default() }),
            etag: String::new(),
        })
        .await
        .expect_err("no customer");
    assert_eq!(err.code(), Code::NotFound);
    let err = s1
        .update_contact(pb::UpdateContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: Some(pb::Contact { id: uuid::Uuid::now_v7().to_string(), name: "x".into(), ..Default::default() }),
            update_mask: mask(&["name"]),
            etag: String::new(),
        })
        .await
        .expect_err("no contact");
    assert_eq!(err.code(), Code::NotFound);
    let err = s1
        .update_contact(pb::UpdateContactRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            contact: Some(pb::Contact { id: "bad".into(), ..Default::default() }),
            update_mask: mask(&["name"]),
            etag: String::new(),
        })
        .await
        .expect_err("bad id");
    assert_invalid(&err, "contact.id");
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.get(&c.id).await, c);
}

#[tokio::test]
async fn addresses_are_added_updated_and_removed() {
    let app = App::new().await;
    let mut s1 = app.sales("s1").await;
    let c = app.create(&mut s1, org("甲公司", "CN-BJ")).await;
    let added = s1
        .add_address(pb::AddAddressRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            address: Some(pb::Address {
                kind: pb::AddressKind::ServiceSite as i32,
                province: "广东省".into(),
                city: "深圳市".into(),
                district: "南山区".into(),
                street: "科技园南路 1 号".into(),
                postal_code: "518057".into(),
                ..Default::default()
            }),
            etag: c.etag.clone(),
        })
        .await
        .expect("add")
        .into_inner();
    let address = added.address.expect("address");
    assert_eq!(added.customer.expect("customer").addresses, vec![address.clone()]);

    let updated = s1
        .update_address(pb::UpdateAddressRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            address: Some(pb::Address {
                id: address.id.clone(),
                kind: pb::AddressKind::Branch as i32,
                street: "科技园北路 2 号".into(),
                ..Default::default()
            }),
            update_mask: mask(&["kind", "street"]),
            etag: String::new(),
        })
        .await
        .expect("update")
        .into_inner()
        .customer
        .expect("customer");
    assert_eq!(updated.addresses[0].kind, pb::AddressKind::Branch as i32);
    assert_eq!(updated.addresses[0].street, "科技园北路 2 号");
    assert_eq!(updated.addresses[0].city, "深圳市");

    let err = s1
        .update_address(pb::UpdateAddressRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            address: Some(pb::Address { id: address.id.clone(), kind: 0, street: "".into(), ..Default::default() }),
            update_mask: mask(&["kind", "street", "country"]),
            etag: String::new(),
        })
        .await
        .expect_err("bad");
    assert_invalid(&err, "address.kind");
    assert_invalid(&err, "address.street");
    assert_invalid(&err, "update_mask");

    s1.remove_address(pb::RemoveAddressRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        address_id: address.id.clone(),
        etag: String::new(),
    })
    .await
    .expect("remove");
    assert_eq!(app.count("addresses").await, 0);
    let err = s1
        .remove_address(pb::RemoveAddressRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            address_id: address.id,
            etag: String::new(),
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    let err = s1
        .add_address(pb::AddAddressRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            address: Some(pb::Address { kind: 0, street: "x".into(), ..Default::default() }),
            etag: String::new(),
        })
        .await
        .expect_err("no kind");
    assert_invalid(&err, "address.kind");
    assert_eq!(app.count("addresses").await, 0);
}
