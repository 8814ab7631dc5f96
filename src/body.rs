//! TEMPORARY stub
#[derive(Debug, thiserror::Error)]
#[error("bad body")]
pub struct BodyError;
pub fn decode_for_reading<'a>(
    _ce: Option<&str>,
    raw: &'a [u8],
    _max: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, BodyError> {
    Ok(std::borrow::Cow::Borrowed(raw))
}
