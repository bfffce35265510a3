//! The EC2 Query protocol's XML response, read as JSON would read it, so that
//! events carry the raw payload exactly as the API returned it.
//!
//! Rules: an element with children becomes an object; one whose children are all
//! `<item>` (or `<member>`) becomes an array; a leaf becomes its text; an empty
//! `…Set` element becomes an empty array. Values stay strings: the XML has no types.
//!
//! The document is parsed into a tree of [`Node`]s that borrows the response's
//! text, and each item the collector publishes is written from it straight as
//! canonical JSON text (object keys sorted, compact, `serde_json`'s escaping):
//! no `serde_json::Value` is built, serialized and freed per item, and the
//! text (and so its content hash) is byte for byte what serializing the
//! equivalent `Value` gives.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid xml response: {0}")]
pub struct XmlError(String);

/// An element as JSON reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Text(Cow<'a, str>),
    List(Vec<Node<'a>>),
    /// Fields in document order; a name given more than once holds a list.
    Object(Vec<(&'a str, Node<'a>)>),
}

struct Frame<'a> {
    name: &'a str,
    children: Vec<(&'a str, Node<'a>)>,
    text: Cow<'a, str>,
}

impl<'a> Frame<'a> {
    fn new(name: &'a str) -> Frame<'a> {
        Frame {
            name,
            children: Vec::new(),
            text: Cow::Borrowed(""),
        }
    }

    fn push_text(&mut self, text: Cow<'a, str>) {
        if self.text.is_empty() {
            self.text = text;
        } else {
            self.text.to_mut().push_str(&text);
        }
    }

    fn into_node(self) -> Node<'a> {
        if self.children.is_empty() {
            if self.name.ends_with("Set") && self.text.trim().is_empty() {
                return Node::List(Vec::new());
            }
            return Node::Text(self.text);
        }
        if self
            .children
            .iter()
            .all(|(n, _)| *n == "item" || *n == "member")
        {
            return Node::List(self.children.into_iter().map(|(_, v)| v).collect());
        }
        let mut fields: Vec<(&'a str, Node<'a>)> = Vec::with_capacity(self.children.len());
        for (name, node) in self.children {
            match fields.iter_mut().find(|(n, _)| *n == name) {
                None => fields.push((name, node)),
                Some((_, Node::List(existing))) => existing.push(node),
                Some((_, existing)) => {
                    let first = std::mem::replace(existing, Node::List(Vec::new()));
                    *existing = Node::List(vec![first, node]);
                }
            }
        }
        Node::Object(fields)
    }
}

/// Parse a whole response document; returns the root element's node.
pub fn parse(xml: &str) -> Result<Node<'_>, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let err = |e: &dyn std::fmt::Display| XmlError(e.to_string());
    loop {
        match reader.read_event().map_err(|e| err(&e))? {
            Event::Start(e) => {
                let name = local(xml, e.local_name().into_inner())?;
                stack.push(Frame::new(name));
            }
            Event::Empty(e) => {
                let name = local(xml, e.local_name().into_inner())?;
                let node = Frame::new(name).into_node();
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, node)),
                    None => return Ok(node),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let text = match t.xml10_content() {
                        Cow::Borrowed(b) => Cow::Borrowed(borrowed(xml, b)),
                        Cow::Owned(o) => Cow::Owned(o),
                    };
                    top.push_text(text);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.push_text(Cow::Owned(t.xml10_content().into_owned()));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| err(&e))?.map(String::from)
                } else {
                    let name = r.xml10_content();
                    resolve_predefined_entity(&name).map(String::from)
                };
                let text = resolved.ok_or_else(|| XmlError("unknown entity reference".into()))?;
                if let Some(top) = stack.last_mut() {
                    top.push_text(Cow::Owned(text));
                }
            }
            Event::End(_) => {
                let frame = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                let name = frame.name;
                let node = frame.into_node();
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, node)),
                    None => return Ok(node),
                }
            }
            Event::Eof => return Err(XmlError("document ended before its root closed".into())),
            _ => {}
        }
    }
}

/// A name quick-xml hands out: a slice of the document, borrowed as such.
fn local<'a>(xml: &'a str, name: &str) -> Result<&'a str, XmlError> {
    Ok(borrowed(xml, name))
}

/// `part` (a slice of `xml`, or a copy of one) with `xml`'s lifetime.
fn borrowed<'a>(xml: &'a str, part: &str) -> &'a str {
    let (start, end) = (xml.as_ptr() as usize, xml.as_ptr() as usize + xml.len());
    let at = part.as_ptr() as usize;
    if at >= start && at + part.len() <= end {
        &xml[at - start..at - start + part.len()]
    } else {
        // Not a slice of the document (cannot happen with `Reader::from_str`):
        // find it there rather than fail.
        xml.find(part).map_or("", |i| &xml[i..i + part.len()])
    }
}

impl<'a> Node<'a> {
    /// The field `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a leaf, if it is one and not empty.
    pub fn text(&self) -> Option<&str> {
        match self {
            Node::Text(t) if !t.is_empty() => Some(t),
            _ => None,
        }
    }

    /// The node at a JSON pointer (`/instanceState/name`; list steps by index).
    pub fn pointer(&self, path: &str) -> Option<&Node<'a>> {
        path.split('/')
            .skip(1)
            .try_fold(self, |node, step| match node {
                Node::Object(_) => node.get(step),
                Node::List(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
                Node::Text(_) => None,
            })
    }

    /// The nodes at a JSON pointer whose `*` steps go into every element of a
    /// list (`/reservationSet/*/instancesSet/*`), as `inventory_model::select`.
    pub fn select(&self, path: &str) -> Vec<&Node<'a>> {
        let mut current = vec![self];
        for step in path.split('/').skip(1) {
            let mut next = Vec::with_capacity(current.len());
            for node in current {
                match (step, node) {
                    ("*", Node::List(items)) => next.extend(items.iter()),
                    ("*", _) => {}
                    (name, Node::Object(_)) => next.extend(node.get(name)),
                    (index, Node::List(items)) => {
                        next.extend(index.parse::<usize>().ok().and_then(|i| items.get(i)))
                    }
                    _ => {}
                }
            }
            current = next;
        }
        current
    }

    /// Write this node as canonical JSON text: object keys sorted (as
    /// `serde_json::Map` orders them), compact, `serde_json`'s escaping.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Node::Text(t) => serde_json::to_writer(&mut *out, t.as_ref()).expect("a string writes"),
            Node::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Node::Object(fields) => {
                let mut sorted: Vec<&(&str, Node)> = fields.iter().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (name, value)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, name).expect("a string writes");
                    out.push(b':');
                    value.write_json(out);
                }
                out.push(b'}');
            }
        }
    }

    /// This node as canonical JSON text.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        String::from_utf8(out).expect("json text is utf-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const INSTANCES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <reservationSet>
    <item>
      <reservationId>r-abc</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-1</instanceId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <groupSet/>
          <tagSet><item><key>Name</key><value>a &amp; b &#x41; "q" \ é</value></item></tagSet>
          <description></description>
          <zeta>last</zeta><alpha>first</alpha>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>tok</nextToken>
</DescribeInstancesResponse>"#;

    fn value(xml: &str) -> Value {
        serde_json::from_str(&parse(xml).unwrap().to_json()).unwrap()
    }

    #[test]
    fn ec2_response_becomes_json() {
        let v = value(INSTANCES);
        assert_eq!(v["nextToken"], "tok");
        let inst = &v["reservationSet"][0]["instancesSet"][0];
        assert_eq!(inst["instanceId"], "i-1");
        assert_eq!(
            inst["instanceState"],
            json!({"code": "16", "name": "running"})
        );
        assert_eq!(inst["groupSet"], json!([]));
        assert_eq!(inst["description"], "");
        assert_eq!(
            inst["tagSet"],
            json!([{"key": "Name", "value": "a & b A \"q\" \\ é"}])
        );
    }

    #[test]
    fn item_text_is_canonical_json_and_hashes_as_the_value_did() {
        let doc = parse(INSTANCES).unwrap();
        let items = doc.select("/reservationSet/*/instancesSet/*");
        assert_eq!(items.len(), 1);
        let text = items[0].to_json();
        // Sorted keys, compact, serde_json's escaping: exactly what
        // serializing the equivalent Value gives.
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&reparsed).unwrap(), text);
        assert!(
            text.starts_with(r#"{"alpha":"first","description":"","#),
            "{text}"
        );
        assert_eq!(
            items[0].pointer("/instanceState/name").unwrap().text(),
            Some("running")
        );
        assert_eq!(
            items[0].pointer("/tagSet/0/key").unwrap().text(),
            Some("Name")
        );
        assert_eq!(doc.get("nextToken").and_then(Node::text), Some("tok"));
    }

    #[test]
    fn repeated_elements_become_arrays_and_bad_xml_fails() {
        assert_eq!(
            value("<r><a>1</a><a>2</a><b>x</b><a>3</a></r>"),
            json!({"a": ["1", "2", "3"], "b": "x"})
        );
        assert!(parse("<r><a>1</r>").is_err());
        assert!(parse("<r>").is_err());
    }
}
