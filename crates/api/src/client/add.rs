//! `POST /add`: the upload as a streamed multipart body, the outputs as a
//! stream.

use futures::StreamExt;
use futures::stream::BoxStream;
use http::Method;
use http_body_util::{BodyExt, StreamBody};

use super::request::{Payload, query};
use super::{Client, ClientError};
use crate::multipart;
use crate::service::AddFile;
use crate::types::{AddParams, AddedOutput};

impl Client {
    /// `POST /add`: uploads `files` as Go's client does (one
    /// multipart/form-data part per entry, streamed as the entries and
    /// their bytes are read) and streams the [`AddedOutput`]s as the peer
    /// produces them. As Go's client, always asks for
    /// `stream-channels=true`.
    ///
    /// Entries are sent in the order given: a directory's entry before
    /// its contents (as Go's client), paths `/`-separated and relative,
    /// the first component naming the top-level entry.
    ///
    /// # Errors
    /// Each item: the API's error (a 400 for bad parameters, a 501 for
    /// unsupported ones), a non-empty `X-Stream-Error` trailer (the add
    /// failed half-way; code 500), or a transport error (also when reading
    /// a file fails: the upload is cut).
    pub fn add(
        &self,
        params: &AddParams,
        files: BoxStream<'static, Result<AddFile, crate::ApiError>>,
    ) -> BoxStream<'static, Result<AddedOutput, ClientError>> {
        let mut params = params.clone();
        params.stream_channels = true;
        let boundary = multipart::new_boundary();
        let body = StreamBody::new(
            multipart::write_upload(files, boundary.clone()).map(|chunk| {
                chunk
                    .map(http_body::Frame::data)
                    .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
            }),
        );
        let payload = Payload {
            body: BodyExt::boxed_unsync(body),
            content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        };
        let pq = format!("/add?{}", query(&params.to_query()));
        self.stream_payload(Method::POST, pq, payload)
    }
}
