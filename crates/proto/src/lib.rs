//! Generated code for the `crm.*` protobuf packages (see `proto/`).
#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every crm proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/crm_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("crm.common.v1");
    }
}

pub mod billing {
    pub mod v1 {
        tonic::include_proto!("crm.billing.v1");
    }
}

pub mod customers {
    pub mod v1 {
        tonic::include_proto!("crm.customers.v1");
    }
}

pub mod complaints {
    pub mod v1 {
        tonic::include_proto!("crm.complaints.v1");
    }
}

pub mod dispatch {
    pub mod v1 {
        tonic::include_proto!("crm.dispatch.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("crm.events.v1");
    }
}

pub mod codec;

include!(concat!(env!("OUT_DIR"), "/edge_check.rs"));
