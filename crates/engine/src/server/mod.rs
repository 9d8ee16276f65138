//! The venue server: gateway, engine and publisher threads (being written).
