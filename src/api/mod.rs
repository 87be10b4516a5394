//! The EC2 API as a service: the operations over API-named parameters
//! (`ops`, shared by the AWS CLI emulation and the endpoint), the Query
//! protocol's parameter decoding (`params`), its XML (`xml`), HTTP/1.1
//! (`http`) and the endpoint itself (`server`, what `ebsim serve` runs).

pub mod http;
pub mod ops;
pub mod params;
pub mod server;
pub mod xml;
