//! A strict XML reader for the documents banks are sent (pain.001): the
//! whole document as a small tree of namespace-resolved elements, or an
//! error that says why leash will not read it.
//!
//! Built on quick-xml, which never expands anything a DTD declares. leash
//! goes further and refuses the hazards outright (research §10 trap 27):
//! a `<!DOCTYPE>` (XXE, billion laughs) and any entity reference beyond the
//! five predefined ones and character references are *ambiguous*: a bank
//! whose parser expands them reads text leash never saw. The document is
//! bounded in size, depth and element count, must be UTF-8 (a declared
//! other encoding is refused, not guessed), and must have exactly one root.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Largest document read (the proxy's `limits.max_body` usually bites
/// first).
pub const MAX_DOCUMENT: usize = 16 << 20;
/// Deepest nesting read: pain.001 nests about ten levels.
pub const MAX_DEPTH: usize = 32;
/// Most elements read: about twenty per credit transfer.
pub const MAX_ELEMENTS: usize = 500_000;

/// One element: its namespace URI and local name (the prefix is gone: any
/// prefix is legal), attributes, child elements and character data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The namespace URI, `None` for an element in no namespace.
    pub ns: Option<String>,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Element>,
    /// Character data (text, CDATA, character references), concatenated.
    pub text: String,
    /// Whether a comment or processing instruction stood among this
    /// element's character data: `10<!---->0.12` is `100.12` to a
    /// conforming parser and may be `10` to a naive one.
    pub interrupted: bool,
}

/// One attribute, namespace-resolved (an unprefixed attribute is in no
/// namespace, whatever the default namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub ns: Option<String>,
    /// Whether the attribute was written with a prefix.
    pub prefixed: bool,
    pub name: String,
    pub value: String,
}

/// Why a document was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A DTD or an entity leash does not expand: another parser may.
    #[error("the XML {0}; leash does not read DTDs or entities (XXE, entity expansion)")]
    Hazard(String),
    #[error("the XML document is larger than {MAX_DOCUMENT} bytes")]
    TooLarge,
    #[error("the XML nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("the XML has more than {MAX_ELEMENTS} elements")]
    TooMany,
    /// Not UTF-8, or another encoding declared.
    #[error("the XML {0}")]
    Encoding(String),
    /// Not well-formed (quick-xml's message, which names a position and
    /// never quotes the input at length).
    #[error("the XML is not well-formed: {0}")]
    Malformed(String),
}

impl XmlError {
    /// Whether another parser may read the document as something leash
    /// did not (refused outright), rather than not at all.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, XmlError::Hazard(_))
    }
}

impl Element {
    /// The child elements named `name` in namespace `ns`.
    pub fn children_named<'e>(
        &'e self,
        ns: &'e str,
        name: &'e str,
    ) -> impl Iterator<Item = &'e Element> + 'e {
        self.children
            .iter()
            .filter(move |c| c.name == name && c.ns.as_deref() == Some(ns))
    }

    /// Every element of the tree below (and including) this one.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = vec![self];
        let mut at = 0;
        while let Some(e) = out.get(at).copied() {
            out.extend(e.children.iter());
            at += 1;
        }
        out
    }

    /// The attributes whose local name is `name`, with or without prefix.
    pub fn attributes_named<'e>(&'e self, name: &'e str) -> impl Iterator<Item = &'e Attribute> {
        self.attributes.iter().filter(move |a| a.name == name)
    }
}

/// Reads `bytes` as one XML document.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(XmlError::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError::Encoding(format!("is not UTF-8 (at byte {})", e.valid_up_to())))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().enable_all_checks(true);
    reader.config_mut().expand_empty_elements = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let malformed = |e: quick_xml::Error| XmlError::Malformed(short(&e.to_string()));
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = owned_ns(ns)?;
        match event {
            Event::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("more than one root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(element(&reader, ns, &start)?);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("more than one root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let done = element(&reader, ns, &start)?;
                close(&mut stack, &mut root, done);
            }
            Event::End(_) => match stack.pop() {
                Some(done) => close(&mut stack, &mut root, done),
                None => return Err(XmlError::Malformed("an end tag without a start".into())),
            },
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(e) => push_text(e, &content),
                    None if content.trim_matches(XML_SPACE).is_empty() => {}
                    None => {
                        return Err(XmlError::Malformed(
                            "character data outside the root element".into(),
                        ))
                    }
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(e) => push_text(e, &c.xml10_content()),
                None => {
                    return Err(XmlError::Malformed(
                        "a CDATA section outside the root element".into(),
                    ))
                }
            },
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(malformed)?
                        .ok_or_else(|| XmlError::Malformed("a bad character reference".into()))?
                } else {
                    let name = r.xml10_content();
                    predefined(&name).ok_or_else(|| {
                        XmlError::Hazard(format!("refers to the entity &{};", short(&name)))
                    })?
                };
                match stack.last_mut() {
                    Some(e) => push_text(e, ch.encode_utf8(&mut [0u8; 4])),
                    None => {
                        return Err(XmlError::Malformed(
                            "a reference outside the root element".into(),
                        ))
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {
                if let Some(e) = stack.last_mut() {
                    e.interrupted = true;
                }
            }
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding =
                        encoding.map_err(|e| XmlError::Malformed(short(&e.to_string())))?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(XmlError::Encoding(format!(
                            "declares the encoding {:?}; leash reads UTF-8 documents only",
                            short(&encoding)
                        )));
                    }
                }
                let version = decl
                    .version()
                    .map_err(|e| XmlError::Malformed(short(&e.to_string())))?;
                if version != "1.0" {
                    return Err(XmlError::Malformed(format!(
                        "XML version {:?} (leash reads 1.0)",
                        short(&version)
                    )));
                }
            }
            Event::DocType(_) => return Err(XmlError::Hazard("has a DOCTYPE (a DTD)".into())),
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

/// XML's whitespace (`S`): space, tab, CR, LF.
pub const XML_SPACE: &[char] = &[' ', '\t', '\r', '\n'];

fn push_text(e: &mut Element, text: &str) {
    e.text.push_str(text);
}

fn close(stack: &mut [Element], root: &mut Option<Element>, done: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(done),
        None => *root = Some(done),
    }
}

fn owned_ns(ns: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match ns {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_owned())),
        ResolveResult::Unknown(prefix) => Err(XmlError::Malformed(format!(
            "the prefix {:?} is not bound to a namespace",
            short(&prefix)
        ))),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    ns: Option<String>,
    start: &BytesStart<'_>,
) -> Result<Element, XmlError> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attr in start.attributes().with_checks(true) {
        let attr = attr.map_err(|e| XmlError::Malformed(short(&e.to_string())))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, local) = reader.resolver().resolve_attribute(key);
        let ns = owned_ns(ns)?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| match e {
                quick_xml::Error::Escape(_) => {
                    XmlError::Hazard("refers to an entity in an attribute".into())
                }
                other => XmlError::Malformed(short(&other.to_string())),
            })?;
        attributes.push(Attribute {
            ns,
            prefixed: key.prefix().is_some(),
            name: local.as_ref().to_owned(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        ns,
        name,
        attributes,
        ..Element::default()
    })
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// At most 80 characters of a message built from input.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefixes_resolve_to_namespaces() {
        let doc = parse(
            br#"<?xml version="1.0" encoding="utf-8"?>
<p:Document xmlns:p="urn:x" xmlns:q="urn:y"><p:A Ccy="EUR" q:B="1">1&amp;2&#x33;<![CDATA[<4>]]></p:A><C/></p:Document>"#,
        )
        .unwrap();
        assert_eq!(doc.ns.as_deref(), Some("urn:x"));
        assert_eq!(doc.name, "Document");
        let a = &doc.children[0];
        assert_eq!((a.ns.as_deref(), a.name.as_str()), (Some("urn:x"), "A"));
        assert_eq!(a.text, "1&23<4>");
        assert_eq!(a.attributes[0].ns, None);
        assert_eq!(a.attributes[0].value, "EUR");
        assert_eq!(a.attributes[1].ns.as_deref(), Some("urn:y"));
        assert!(a.attributes[1].prefixed);
        assert_eq!(doc.children[1].ns, None);
        assert_eq!(doc.children_named("urn:x", "A").count(), 1);
        assert_eq!(doc.descendants().len(), 3);
    }

    #[test]
    fn hazards_are_refused_as_ambiguous() {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>"#;
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        for doc in [&xxe[..], &laughs[..], b"<d>&x;</d>", b"<d a=\"&x;\"/>"] {
            let e = parse(doc).unwrap_err();
            assert!(e.is_ambiguous(), "{e}");
        }
    }

    #[test]
    fn odd_documents_are_unreadable() {
        let cases: &[&[u8]] = &[
            b"",
            b"<a>",
            b"<a></b>",
            b"<a/><b/>",
            b"x<a/>",
            b"<a>\xff</a>",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
            b"<?xml version=\"1.1\"?><a/>",
            b"\xFF\xFE<\0a\0/\0>\0",
            b"<p:a/>",
            b"<a x=\"1\" x=\"2\"/>",
        ];
        for doc in cases {
            let e = parse(doc).unwrap_err();
            assert!(!e.is_ambiguous(), "{e}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), XmlError::TooDeep);
        assert!(parse(&vec![b' '; MAX_DOCUMENT + 1]).is_err());
    }

    #[test]
    fn comments_inside_values_are_noticed() {
        let doc = parse(b"<a><b>10<!-- x -->0.12</b><c>1</c></a>").unwrap();
        assert!(doc.children[0].interrupted);
        assert_eq!(doc.children[0].text, "100.12");
        assert!(!doc.children[1].interrupted);
        assert!(parse("\u{feff}<a/>".as_bytes()).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_xmlish_text(s in "[<>/a-c:=\"' &;#x0-9!\\[\\]DOCTYPE?-]{0,200}") {
            let _ = parse(s.as_bytes());
        }
    }
}
