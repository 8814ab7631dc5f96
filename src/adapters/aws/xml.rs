//! A small element tree over quick-xml, for EC2's answers (research §7.3:
//! `Describe*Offerings` and previews answer XML in EC2's namespace).
//!
//! Elements are matched by local name (EC2 answers carry a default
//! namespace, `http://ec2.amazonaws.com/doc/2016-11-15/`). Anything odd —
//! a DTD (so no entity expansion, trap 27), an entity other than XML's five
//! and character references, mismatched tags, text that is not UTF-8,
//! nesting deeper than [`MAX_DEPTH`], more than [`MAX_ELEMENTS`] elements —
//! makes the whole document unreadable: learning from it is only ever a
//! saving, never needed.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest nesting read (EC2 answers are a handful of levels deep).
pub const MAX_DEPTH: usize = 32;

/// Most elements read in one document.
pub const MAX_ELEMENTS: usize = 200_000;

/// One element: its local name, its text (concatenated, untrimmed) and its
/// child elements in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child called `name`.
    #[cfg(test)]
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`.
    pub fn all<'e, 'n>(&'e self, name: &'n str) -> impl Iterator<Item = &'e Element> + use<'e, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the only child called `name`; `None` when there
    /// is none, or more than one (then which one counts is not clear).
    pub fn text_of(&self, name: &str) -> Option<&str> {
        let mut found = self.all(name);
        let first = found.next()?;
        if found.next().is_some() {
            return None;
        }
        Some(first.text.trim())
    }

    /// The `item` children of the only child called `set` (EC2's lists:
    /// `<capacityBlockOfferingSet><item>…</item></capacityBlockOfferingSet>`).
    pub fn items<'e>(&'e self, set: &str) -> Vec<&'e Element> {
        let mut sets = self.all(set);
        match (sets.next(), sets.next()) {
            (Some(only), None) => only.all("item").collect(),
            _ => Vec::new(),
        }
    }
}

/// The document's root element, or `None` when the document is not read
/// exactly (see the module docs).
pub fn parse(bytes: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut count = 0usize;
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                if root.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return None;
                }
                stack.push(Element {
                    name: local(start.local_name().as_ref()),
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                count += 1;
                if root.is_some() || count > MAX_ELEMENTS {
                    return None;
                }
                let element = Element {
                    name: local(start.local_name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&content),
                    // Only whitespace may stand outside the root.
                    None if content.trim().is_empty() => {}
                    None => return None,
                }
            }
            Event::CData(data) => {
                let content: &str = &data;
                stack.last_mut()?.text.push_str(content);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().ok()? {
                    Some(c) => c,
                    None => match &*reference {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => return None,
                    },
                };
                stack.last_mut()?.text.push(resolved);
            }
            Event::DocType(_) => return None,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return None;
    }
    root
}

/// A local name as owned text.
fn local(name: &str) -> String {
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_ec2_answers_by_local_name() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeCapacityBlockOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f</requestId>
  <capacityBlockOfferingSet>
    <item><capacityBlockOfferingId>cb-1</capacityBlockOfferingId><upfrontFee>2,359.68 &amp; &#65;</upfrontFee></item>
    <item><capacityBlockOfferingId><![CDATA[cb-2]]></capacityBlockOfferingId><empty/></item>
  </capacityBlockOfferingSet>
</DescribeCapacityBlockOfferingsResponse>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "DescribeCapacityBlockOfferingsResponse");
        let items = root.items("capacityBlockOfferingSet");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text_of("upfrontFee"), Some("2,359.68 & A"));
        assert_eq!(items[1].text_of("capacityBlockOfferingId"), Some("cb-2"));
        assert!(items[1].child("empty").is_some());
    }

    #[test]
    fn odd_documents_are_not_read() {
        for doc in [
            &b"<!DOCTYPE a [<!ENTITY x \"1\">]><a>&x;</a>"[..],
            b"<a>&nbsp;</a>",
            b"<a><b></a></b>",
            b"<a>",
            b"<a/><b/>",
            b"text<a/>",
            b"<a>\xff</a>",
            b"",
        ] {
            assert!(parse(doc).is_none(), "{}", String::from_utf8_lossy(doc));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_none());
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_some());
    }

    #[test]
    fn a_field_given_twice_is_not_read() {
        let root = parse(b"<r><upfrontFee>1</upfrontFee><upfrontFee>2</upfrontFee></r>").unwrap();
        assert_eq!(root.text_of("upfrontFee"), None);
        let root = parse(b"<r><s><item/></s><s><item/></s></r>").unwrap();
        assert!(root.items("s").is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_xmlish_text(text in "[<>/a-c &;#x0-9!\\[\\]CDATA-]{0,200}") {
            let _ = parse(text.as_bytes());
        }
    }
}
