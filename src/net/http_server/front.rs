//! What answers the requests of an [`super::HttpServer`]'s connections: the tracker's HTTP
//! front or the REST API. One server serves one front; the server only moves bytes.

use std::net::IpAddr;

use crate::front::api::{self, ApiSite, OpSink, Waiter};
use crate::front::http::{HttpSite, Outcome, Scratch, serve_request};
use crate::service::Tracker;

/// The limits of a request head, passed to [`Front::serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes of a request head (`http.max_request_size`; 413 beyond).
    pub max_request_size: usize,
    /// Most header lines of a request head (`http.max_header_lines`; 431 beyond).
    pub max_header_lines: usize,
}

/// What answers the requests of a server's connections: the tracker (`&HttpSite`, see
/// [`crate::front::http`]) or the REST API ([`ApiFront`]). One [`super::HttpServer`] serves one front.
pub trait Front {
    /// Serves the request at the start of `data` (see [`crate::front::http::serve_request`])
    /// within `limits` (`http.max_request_size`, `http.max_header_lines`); `waiter` names the
    /// connection for an answer that comes later ([`Outcome::Deferred`]).
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &mut self,
        tracker: &mut Tracker,
        data: &[u8],
        limits: &HeadLimits,
        remote: IpAddr,
        waiter: Waiter,
        now: u32,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Outcome;
}

impl Front for &HttpSite {
    fn serve(
        &mut self,
        tracker: &mut Tracker,
        data: &[u8],
        limits: &HeadLimits,
        remote: IpAddr,
        _waiter: Waiter,
        now: u32,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Outcome {
        serve_request(
            tracker,
            self,
            data,
            limits.max_request_size,
            limits.max_header_lines,
            remote,
            now,
            scratch,
            out,
        )
    }
}

/// The REST API front: its settings and where its writes go.
pub struct ApiFront<'a> {
    /// Tokens and keep-alive.
    pub site: &'a ApiSite,
    /// RAM alone, or the database writer.
    pub sink: &'a mut dyn OpSink,
}

impl Front for ApiFront<'_> {
    fn serve(
        &mut self,
        tracker: &mut Tracker,
        data: &[u8],
        limits: &HeadLimits,
        _remote: IpAddr,
        waiter: Waiter,
        now: u32,
        _scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Outcome {
        api::serve_request(
            tracker,
            self.site,
            self.sink,
            data,
            limits.max_request_size,
            limits.max_header_lines,
            waiter,
            now,
            out,
        )
    }
}
