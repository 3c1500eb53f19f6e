//! The methods a server serves, read from its descriptor set: which paths
//! exist (metrics label only these; anything else is `unknown`) and which
//! stream (admitted in their own pool, no total deadline but an idle
//! timeout per message).

use std::{collections::HashMap, sync::Arc};

use prost::Message;
use prost_types::FileDescriptorSet;

/// How a method exchanges messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Unary,
    /// The client sends a stream (bulk uploads).
    ClientStream,
    /// The server answers with a stream (event feeds).
    ServerStream,
    Bidi,
}

impl Shape {
    pub fn is_streaming(self) -> bool {
        self != Shape::Unary
    }

    /// Whether the client sends more than one message.
    pub fn client_streams(self) -> bool {
        matches!(self, Shape::ClientStream | Shape::Bidi)
    }
}

/// One served method.
#[derive(Debug, Clone)]
pub struct Method {
    /// The bare method name, e.g. `CreateCustomer`: the metrics label.
    pub name: Arc<str>,
    pub shape: Shape,
}

/// Every method of the served services, by full path (`/pkg.Service/Method`).
#[derive(Debug, Clone, Default)]
pub struct MethodTable {
    by_path: HashMap<String, Method>,
}

impl MethodTable {
    /// The methods of `services` (fully-qualified names) found in the
    /// encoded descriptor sets.
    pub fn from_descriptors(sets: &[&[u8]], services: &[&str]) -> Result<Self, prost::DecodeError> {
        let mut by_path = HashMap::new();
        for bytes in sets {
            let set = FileDescriptorSet::decode(*bytes)?;
            for file in &set.file {
                for svc in &file.service {
                    let full = if file.package().is_empty() {
                        svc.name().to_string()
                    } else {
                        format!("{}.{}", file.package(), svc.name())
                    };
                    if !services.contains(&full.as_str()) {
                        continue;
                    }
                    for m in &svc.method {
                        let shape = match (m.client_streaming(), m.server_streaming()) {
                            (false, false) => Shape::Unary,
                            (true, false) => Shape::ClientStream,
                            (false, true) => Shape::ServerStream,
                            (true, true) => Shape::Bidi,
                        };
                        by_path.insert(format!("/{full}/{}", m.name()), Method { name: Arc::from(m.name()), shape });
                    }
                }
            }
        }
        Ok(Self { by_path })
    }

    pub fn get(&self, path: &str) -> Option<&Method> {
        self.by_path.get(path)
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_service_is_read_from_its_descriptor() {
        let t = MethodTable::from_descriptors(&[tonic_health::pb::FILE_DESCRIPTOR_SET], &["grpc.health.v1.Health"]);
        let t = t.unwrap_or_default();
        assert_eq!(t.get("/grpc.health.v1.Health/Check").map(|m| m.shape), Some(Shape::Unary));
        assert_eq!(t.get("/grpc.health.v1.Health/Watch").map(|m| m.shape), Some(Shape::ServerStream));
        assert!(t.get("/grpc.health.v1.Health/Nope").is_none());
    }
}
