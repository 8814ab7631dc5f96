//! A strict `multipart/form-data` reader (RFC 7578 / RFC 2046) for the
//! Berlin Group periodic pain.001 payment (part `xml_sct` with the
//! document, part `json_standingorderType`) and for uploads that carry a
//! pain.001 file in a form part.
//!
//! Stricter than a server's parser on purpose, so that nothing a bank could
//! read as a part is skipped: CRLF line breaks only, the body starts with
//! the first delimiter, nothing but whitespace after the last, no
//! `Content-Transfer-Encoding` other than the identity ones, and no part
//! name twice.

use super::ReadError;

/// One part: its form name, media type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: Option<String>,
    pub filename: Option<String>,
    /// Lowercase, without parameters.
    pub content_type: Option<String>,
    pub body: &'a [u8],
}

/// Most parts read.
const MAX_PARTS: usize = 64;

/// The `boundary` parameter of a `multipart/…` Content-Type.
pub fn boundary(content_type: &str) -> Result<String, ReadError> {
    let mut found = None;
    for param in content_type.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("boundary") {
            if found.is_some() {
                return Err(ReadError::Ambiguous(
                    "the Content-Type names two multipart boundaries".into(),
                ));
            }
            let value = value.trim();
            let value = match value.strip_prefix('"') {
                Some(rest) => rest.strip_suffix('"').ok_or_else(|| {
                    ReadError::Unreadable("the multipart boundary's quote is not closed".into())
                })?,
                None => value,
            };
            found = Some(value.to_owned());
        }
    }
    let boundary = found.ok_or_else(|| {
        ReadError::Unreadable("the multipart Content-Type has no boundary".into())
    })?;
    if boundary.is_empty() || boundary.len() > 70 || boundary.contains(['"', '\\', '\r', '\n']) {
        return Err(ReadError::Unreadable(
            "the multipart boundary is not 1 to 70 plain characters".into(),
        ));
    }
    Ok(boundary)
}

/// Splits `body` into its parts.
pub fn parse<'a>(boundary: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, ReadError> {
    let bad = |why: &str| ReadError::Unreadable(format!("the multipart body {why}"));
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(delimiter.as_bytes())
        .ok_or_else(|| bad("does not start with its boundary"))?;
    let mut parts: Vec<Part<'a>> = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(b"--") {
            if !after.iter().all(u8::is_ascii_whitespace) {
                return Err(bad("has data after its closing boundary"));
            }
            break;
        }
        let content = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("has a boundary not followed by CRLF"))?;
        let end = memchr::memmem::find(content, next.as_bytes())
            .ok_or_else(|| bad("has no closing boundary"))?;
        let (part, after) = content.split_at(end);
        rest = after.get(next.len()..).unwrap_or_default();
        if parts.len() >= MAX_PARTS {
            return Err(bad(&format!("has more than {MAX_PARTS} parts")));
        }
        let part = read_part(part)?;
        if let Some(name) = &part.name {
            if parts.iter().any(|p| p.name.as_ref() == Some(name)) {
                return Err(ReadError::Ambiguous(format!(
                    "the multipart body has two parts named {:?}",
                    name.chars().take(40).collect::<String>()
                )));
            }
        }
        parts.push(part);
    }
    Ok(parts)
}

fn read_part(part: &[u8]) -> Result<Part<'_>, ReadError> {
    let bad = |why: &str| ReadError::Unreadable(format!("a multipart part {why}"));
    let (head, body) = if let Some(body) = part.strip_prefix(b"\r\n") {
        (&b""[..], body)
    } else {
        let end =
            memchr::memmem::find(part, b"\r\n\r\n").ok_or_else(|| bad("has no header end"))?;
        (
            part.get(..end).unwrap_or_default(),
            part.get(end + 4..).unwrap_or_default(),
        )
    };
    let head = std::str::from_utf8(head).map_err(|_| bad("has headers that are not UTF-8"))?;
    let mut out = Part {
        name: None,
        filename: None,
        content_type: None,
        body,
    };
    let mut seen_disposition = false;
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Err(bad("has a folded header"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("has a header without ':'"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                if seen_disposition {
                    return Err(ReadError::Ambiguous(
                        "a multipart part has two Content-Disposition headers".into(),
                    ));
                }
                seen_disposition = true;
                let mut params = value.split(';');
                let kind = params.next().unwrap_or("").trim();
                if !kind.eq_ignore_ascii_case("form-data") {
                    return Err(bad("is not form-data"));
                }
                for param in params {
                    let (key, v) = param
                        .split_once('=')
                        .ok_or_else(|| bad("has an odd Content-Disposition parameter"))?;
                    let v = v.trim();
                    let v = match v.strip_prefix('"') {
                        Some(inner) => inner
                            .strip_suffix('"')
                            .filter(|s| !s.contains(['"', '\\']))
                            .ok_or_else(|| bad("has an odd quoted parameter"))?,
                        None => v,
                    };
                    let slot = match key.trim().to_ascii_lowercase().as_str() {
                        "name" => &mut out.name,
                        "filename" => &mut out.filename,
                        _ => return Err(bad("has an unknown Content-Disposition parameter")),
                    };
                    if slot.is_some() {
                        return Err(ReadError::Ambiguous(
                            "a multipart part names itself twice".into(),
                        ));
                    }
                    *slot = Some(v.to_owned());
                }
            }
            "content-type" => {
                if out.content_type.is_some() {
                    return Err(ReadError::Ambiguous(
                        "a multipart part has two Content-Type headers".into(),
                    ));
                }
                out.content_type = Some(super::media_type(value));
            }
            "content-transfer-encoding" => {
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "7bit" | "8bit" | "binary") {
                    return Err(bad("is transfer-encoded (base64 or quoted-printable)"));
                }
            }
            "content-encoding" => return Err(bad("is compressed")),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_are_split_exactly() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"xml_sct\"\r\nContent-Type: application/xml\r\n\r\n<a/>\r\n--XyZ\r\nContent-Disposition: form-data; name=json_standingorderType\r\n\r\n{}\r\n--XyZ--\r\n";
        let parts = parse("XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_deref(), Some("xml_sct"));
        assert_eq!(parts[0].content_type.as_deref(), Some("application/xml"));
        assert_eq!(parts[0].body, b"<a/>");
        assert_eq!(parts[1].body, b"{}");
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\"").unwrap(),
            "XyZ"
        );
    }

    #[test]
    fn odd_bodies_are_refused() {
        let twice = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n2\r\n--b--";
        assert!(matches!(parse("b", twice), Err(ReadError::Ambiguous(_))));
        for body in [
            &b"preamble\r\n--b\r\n\r\nx\r\n--b--"[..],
            b"--b\r\n\r\nx\r\n--b--trailing",
            b"--b\r\n\r\nx",
            b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\nPGEvPg==\r\n--b--",
            b"--b\nContent-Disposition: form-data\n\nx\n--b--",
        ] {
            assert!(
                parse("b", body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("multipart/form-data; boundary=a; boundary=b").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in "[a-z-]{0,8}", body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&b, &body);
        }
    }
}
