//! Contacts and addresses: parts of the customer aggregate, always changed
//! under the customer's row lock and followed by `touch` (new etag).

use std::collections::HashMap;

use crm_domain::ids::{AddressId, ContactId, CustomerId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{address_id, address_kind, contact_id};
use crate::{
    error::Result,
    model::{Address, Contact, Customer},
};

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: Uuid,
    customer_id: Uuid,
    name: String,
    position: String,
    phones: Vec<String>,
    email: Option<String>,
    decision_maker: bool,
}

#[derive(sqlx::FromRow)]
struct AddressRow {
    id: Uuid,
    customer_id: Uuid,
    kind: String,
    province: String,
    city: String,
    district: String,
    street: String,
    postal_code: String,
}

/// Fills in contacts and addresses of `customers` with two queries in all.
pub async fn attach_children(conn: &mut PgConnection, customers: &mut [Customer]) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = customers.iter().map(|c| c.id.0).collect();
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();

    let contacts: Vec<ContactRow> = sqlx::query_as(
        "SELECT id, customer_id, name, position, phones, email, decision_maker FROM customers.contacts \
         WHERE customer_id = ANY($1) ORDER BY customer_id, id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for r in contacts {
        if let Some(&i) = index.get(&r.customer_id) {
            customers[i].contacts.push(Contact {
                id: contact_id(r.id),
                name: r.name,
                position: r.position,
                phones: r.phones,
                email: r.email,
                decision_maker: r.decision_maker,
            });
        }
    }

    let addresses: Vec<AddressRow> = sqlx::query_as(
        "SELECT id, customer_id, kind, province, city, district, street, postal_code FROM customers.addresses \
         WHERE customer_id = ANY($1) ORDER BY customer_id, id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let merged: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT merged_into, id FROM customers.customers WHERE merged_into = ANY($1) ORDER BY merged_into, id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for (survivor, id) in merged {
        if let Some(&i) = index.get(&survivor) {
            customers[i].merged_from.push(CustomerId(id));
        }
    }
    for r in addresses {
        if let Some(&i) = index.get(&r.customer_id) {
            customers[i].addresses.push(Address {
                id: address_id(r.id),
                kind: address_kind(&r.kind)?,
                province: r.province,
                city: r.city,
                district: r.district,
                street: r.street,
                postal_code: r.postal_code,
            });
        }
    }
    Ok(())
}

pub async fn insert_contact(conn: &mut PgConnection, customer: CustomerId, c: &Contact) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.contacts (id, customer_id, name, position, phones, email, decision_maker) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.id.0)
    .bind(customer.0)
    .bind(&c.name)
    .bind(&c.position)
    .bind(&c.phones)
    .bind(&c.email)
    .bind(c.decision_maker)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_contact(conn: &mut PgConnection, customer: CustomerId, c: &Contact) -> Result<()> {
    sqlx::query(
        "UPDATE customers.contacts SET name = $3, position = $4, phones = $5, email = $6, decision_maker = $7 \
         WHERE id = $1 AND customer_id = $2",
    )
    .bind(c.id.0)
    .bind(customer.0)
    .bind(&c.name)
    .bind(&c.position)
    .bind(&c.phones)
    .bind(&c.email)
    .bind(c.decision_maker)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_contact(conn: &mut PgConnection, customer: CustomerId, id: ContactId) -> Result<bool> {
    let r = sqlx::query("DELETE FROM customers.contacts WHERE id = $1 AND customer_id = $2")
        .bind(id.0)
        .bind(customer.0)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn insert_address(conn: &mut PgConnection, customer: CustomerId, a: &Address) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers.addresses (id, customer_id, kind, province, city, district, street, postal_code) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id.0)
    .bind(customer.0)
    .bind(a.kind.as_str())
    .bind(&a.province)
    .bind(&a.city)
    .bind(&a.district)
    .bind(&a.street)
    .bind(&a.postal_code)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn save_address(conn: &mut PgConnection, customer: CustomerId, a: &Address) -> Result<()> {
    sqlx::query(
        "UPDATE customers.addresses SET kind = $3, province = $4, city = $5, district = $6, street = $7, \
         postal_code = $8 WHERE id = $1 AND customer_id = $2",
    )
    .bind(a.id.0)
    .bind(customer.0)
    .bind(a.kind.as_str())
    .bind(&a.province)
    .bind(&a.city)
    .bind(&a.district)
    .bind(&a.street)
    .bind(&a.postal_code)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_address(conn: &mut PgConnection, customer: CustomerId, id: AddressId) -> Result<bool> {
    let r = sqlx::query("DELETE FROM customers.addresses WHERE id = $1 AND customer_id = $2")
        .bind(id.0)
        .bind(customer.0)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}
