//! The EC2 Query protocol's XML response, turned into JSON element by element, so
//! that events carry the raw payload exactly as the API returned it.
//!
//! Rules: an element with children becomes an object; one whose children are all
//! `<item>` (or `<member>`) becomes an array; a leaf becomes its text; an empty
//! `…Set` element becomes an empty array. Values stay strings: the XML has no types.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid xml response: {0}")]
pub struct XmlError(String);

struct Frame {
    name: String,
    children: Vec<(String, Value)>,
    text: String,
}

impl Frame {
    fn new(name: String) -> Frame {
        Frame {
            name,
            children: Vec::new(),
            text: String::new(),
        }
    }

    fn into_value(self) -> Value {
        if self.children.is_empty() {
            if self.name.ends_with("Set") && self.text.trim().is_empty() {
                return Value::Array(Vec::new());
            }
            return Value::String(self.text);
        }
        if self
            .children
            .iter()
            .all(|(n, _)| n == "item" || n == "member")
        {
            return Value::Array(self.children.into_iter().map(|(_, v)| v).collect());
        }
        let mut map = Map::new();
        for (name, value) in self.children {
            match map.get_mut(&name) {
                None => {
                    map.insert(name, value);
                }
                Some(Value::Array(existing)) => existing.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, value]);
                }
            }
        }
        Value::Object(map)
    }
}

/// Convert a whole response document; returns the root element's value.
pub fn to_json(xml: &str) -> Result<Value, XmlError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Frame> = Vec::new();
    let err = |e: &dyn std::fmt::Display| XmlError(e.to_string());
    loop {
        match reader.read_event().map_err(|e| err(&e))? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                stack.push(Frame::new(name));
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_owned();
                let value = Frame::new(name.clone()).into_value();
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, value)),
                    None => return Ok(value),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(|e| err(&e))?.map(String::from)
                } else {
                    resolve_predefined_entity(&r.xml10_content()).map(String::from)
                };
                let text = resolved.ok_or_else(|| XmlError("unknown entity reference".into()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::End(_) => {
                let frame = stack
                    .pop()
                    .ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                let name = frame.name.clone();
                let value = frame.into_value();
                match stack.last_mut() {
                    Some(parent) => parent.children.push((name, value)),
                    None => return Ok(value),
                }
            }
            Event::Eof => return Err(XmlError("document ended before its root closed".into())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ec2_response_becomes_json() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
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
          <tagSet><item><key>Name</key><value>a &amp; b &#x41;</value></item></tagSet>
          <description></description>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>tok</nextToken>
</DescribeInstancesResponse>"#;
        let v = to_json(xml).unwrap();
        assert_eq!(v["nextToken"], "tok");
        let inst = &v["reservationSet"][0]["instancesSet"][0];
        assert_eq!(inst["instanceId"], "i-1");
        assert_eq!(
            inst["instanceState"],
            json!({"code": "16", "name": "running"})
        );
        assert_eq!(inst["groupSet"], json!([]));
        assert_eq!(inst["description"], "");
        assert_eq!(inst["tagSet"], json!([{"key": "Name", "value": "a & b A"}]));
    }

    #[test]
    fn repeated_elements_become_arrays_and_bad_xml_fails() {
        let v = to_json("<r><a>1</a><a>2</a><b>x</b></r>").unwrap();
        assert_eq!(v, json!({"a": ["1", "2"], "b": "x"}));
        assert!(to_json("<r><a>1</r>").is_err());
        assert!(to_json("<r>").is_err());
    }
}
