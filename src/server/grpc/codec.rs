//! The server's codec: prost's, but strict as the JSON API is strict. A
//! message that does not decode is `INVALID_ARGUMENT` (`malformed_message`),
//! not `INTERNAL`; and a message that decodes but holds more than its decoded
//! form (a field this service does not know, which prost would drop, or a
//! field given twice, of which prost would keep the last) is refused
//! (`unknown_field`), as an unknown or repeated JSON key is: a typo or a
//! newer client's field must never silently drop a fact.
//!
//! A refusal here happens before the service sees the call; it is counted in
//! `portcullis_rejected_requests_total` by the layer `count_refusals` in the
//! parent module.
//!
//! The check is one `encoded_len` of what was decoded against the bytes
//! received: the canonical encoding every protobuf library writes is exactly
//! as long as the message it encodes.

use std::marker::PhantomData;

use bytes::Buf as _;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// prost's encoding, with the strict decoding above.
#[derive(Debug)]
pub struct CheckedCodec<E, D>(PhantomData<(E, D)>);

impl<E, D> Default for CheckedCodec<E, D> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<E, D> Codec for CheckedCodec<E, D>
where
    E: Message + Send + 'static,
    D: Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = CheckedEncoder<E>;
    type Decoder = CheckedDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        CheckedEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder(PhantomData)
    }
}

/// Encodes with prost.
#[derive(Debug)]
pub struct CheckedEncoder<E>(PhantomData<E>);

impl<E: Message> Encoder for CheckedEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode the answer: {e}")))
    }
}

/// Decodes with prost, then refuses what prost would have dropped.
#[derive(Debug)]
pub struct CheckedDecoder<D>(PhantomData<D>);

impl<D: Message + Default> Decoder for CheckedDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        let received = src.remaining();
        let bytes = src.copy_to_bytes(received);
        let message = D::decode(bytes).map_err(|e| {
            refused(
                MALFORMED,
                format!("the message is not a valid protobuf message: {e}"),
            )
        })?;
        if message.encoded_len() != received {
            return Err(refused(
                UNKNOWN_FIELD,
                "the message has a field this service does not know, or a field given \
                 twice (check the client's proto against portcullis/v1/decisions.proto)"
                    .to_owned(),
            ));
        }
        Ok(Some(message))
    }
}

fn refused(code: &'static str, message: String) -> Status {
    let details =
        ErrorDetails::with_error_info(code, super::DOMAIN, std::collections::HashMap::new());
    let mut status = Status::with_error_details(Code::InvalidArgument, message, details);
    // For the server's counting layer (`count_refusals`), which removes it.
    status
        .metadata_mut()
        .insert(REFUSED_HEADER, MetadataValue::from_static(code));
    status
}

/// Marks a refusal by the codec, which answers before the service (and its
/// counting) sees the call: the header holds the API's error code.
pub(crate) const REFUSED_HEADER: &str = "portcullis-refused";

/// The codes the codec refuses with.
pub(crate) const REFUSAL_CODES: [&str; 2] = [MALFORMED, UNKNOWN_FIELD];
const MALFORMED: &str = "malformed_message";
const UNKNOWN_FIELD: &str = "unknown_field";
