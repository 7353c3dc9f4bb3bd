//! OPML 2.0 subscription lists: reading one (`wirewatch feeds import`) and
//! writing the configured feeds as one (`wirewatch feeds export`). Pure.
//!
//! Only the predefined XML entities are expanded (quick-xml never reads a
//! DTD), so an OPML file cannot pull in other files or blow up in memory.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

/// One subscription found in an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// `title`, else `text`, trimmed; may be empty.
    pub title: String,
    pub url: String,
    /// The `text` of the folders (parent outlines) it sits in.
    pub folders: Vec<String>,
    /// 1-based line of its `<outline>` element.
    pub line: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Every outline with an `xmlUrl`, in document order.
pub fn parse(text: &str) -> Result<Vec<OpmlFeed>, String> {
    let mut reader = Reader::from_str(text);
    let mut out = Vec::new();
    let mut folders: Vec<String> = Vec::new();
    let mut saw_opml = false;
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| format!("line {}: not valid XML: {e}", line_of(text, at)))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "opml" => {
                saw_opml = true;
            }
            Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == "outline" => {
                let is_start = matches!(event, Event::Start(_));
                let attr = |name: &str| -> Result<Option<String>, String> {
                    match e.try_get_attribute(name) {
                        Ok(Some(a)) => a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|v| Some(v.trim().to_string()))
                            .map_err(|err| {
                                format!("line {}: bad attribute value: {err}", line_of(text, at))
                            }),
                        Ok(None) => Ok(None),
                        Err(err) => {
                            Err(format!("line {}: bad attribute: {err}", line_of(text, at)))
                        }
                    }
                };
                let url = attr("xmlUrl")?;
                let title = attr("title")?.filter(|t| !t.is_empty());
                let label = attr("text")?.unwrap_or_default();
                match url.filter(|u| !u.is_empty()) {
                    Some(url) => out.push(OpmlFeed {
                        title: title.unwrap_or(label.clone()),
                        url,
                        folders: folders.clone(),
                        line: line_of(text, at),
                    }),
                    None if is_start => {}
                    None => {}
                }
                if is_start {
                    folders.push(label);
                }
            }
            Event::End(e) if e.name().as_ref() == "outline" => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_opml {
        return Err("not an OPML file (no <opml> element)".into());
    }
    Ok(out)
}

/// One feed to export.
pub struct ExportFeed<'a> {
    pub id: &'a str,
    pub title: Option<&'a str>,
    pub url: &'a str,
}

/// An OPML 2.0 document listing `feeds`.
pub fn write(
    title: &str,
    created: chrono::DateTime<chrono::Utc>,
    feeds: &[ExportFeed<'_>],
) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut opml = BytesStart::new("opml");
    opml.push_attribute(("version", "2.0"));
    let _ = w.write_event(Event::Start(opml));
    let _ = w.write_event(Event::Start(BytesStart::new("head")));
    let _ = w.write_event(Event::Start(BytesStart::new("title")));
    let _ = w.write_event(Event::Text(BytesText::new(title)));
    let _ = w.write_event(Event::End(BytesEnd::new("title")));
    let _ = w.write_event(Event::Start(BytesStart::new("dateCreated")));
    let _ = w.write_event(Event::Text(BytesText::new(&created.to_rfc2822())));
    let _ = w.write_event(Event::End(BytesEnd::new("dateCreated")));
    let _ = w.write_event(Event::End(BytesEnd::new("head")));
    let _ = w.write_event(Event::Start(BytesStart::new("body")));
    for f in feeds {
        let text = f.title.unwrap_or(f.id);
        let mut o = BytesStart::new("outline");
        o.push_attribute(("type", "rss"));
        o.push_attribute(("text", text));
        o.push_attribute(("title", text));
        o.push_attribute(("xmlUrl", f.url));
        o.push_attribute(("wirewatchId", f.id));
        let _ = w.write_event(Event::Empty(o));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("body")));
    let _ = w.write_event(Event::End(BytesEnd::new("opml")));
    let mut s = String::from_utf8(w.into_inner()).unwrap_or_default();
    s.push('\n');
    s
}

/// A feed id from a title (or, failing that, the URL's host and path):
/// lower-case ASCII letters, digits and `-`, at most 40 characters.
pub fn slug(title: &str, url: &str) -> String {
    let make = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            if out.len() >= 40 {
                break;
            }
        }
        out.trim_end_matches('-').to_string()
    };
    let from_title = make(title);
    if from_title.len() >= 3 {
        return from_title;
    }
    let from_url = reqwest::Url::parse(url)
        .ok()
        .map(|u| {
            let host = u
                .host_str()
                .unwrap_or("")
                .trim_start_matches("www.")
                .to_string();
            make(&format!("{host}{}", u.path()))
        })
        .unwrap_or_default();
    if from_url.is_empty() {
        "feed".into()
    } else {
        from_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="World">
      <outline type="rss" text="Wire &amp; World" xmlUrl="https://wire.example.org/world.xml"/>
      <outline text="Europe">
        <outline type="rss" text="Курская правда" xmlUrl="https://kursk.example.ru/rss"/>
      </outline>
    </outline>
    <outline type="rss" text="x" title="Desk notes" xmlUrl=" https://notes.example.net/atom "/>
    <outline text="Empty folder"/>
  </body>
</opml>
"#;

    #[test]
    fn reads_nested_outlines() {
        let feeds = parse(SAMPLE).unwrap();
        assert_eq!(feeds.len(), 3);
        assert_eq!(feeds[0].title, "Wire & World");
        assert_eq!(feeds[0].folders, vec!["World"]);
        assert_eq!(feeds[0].line, 6);
        assert_eq!(feeds[1].title, "Курская правда");
        assert_eq!(feeds[1].folders, vec!["World", "Europe"]);
        assert_eq!(feeds[2].title, "Desk notes");
        assert_eq!(feeds[2].url, "https://notes.example.net/atom");
        assert!(feeds[2].folders.is_empty());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(parse("<rss/>").unwrap_err().contains("not an OPML"));
        let e = parse("<opml>\n<body>\n<outline text=\"a\"></body></opml>").unwrap_err();
        assert!(e.starts_with("line 3"), "{e}");
        // An external entity is never read.
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE o [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
                   <opml><body><outline text=\"&x;\" xmlUrl=\"https://a.example/\"/></body></opml>";
        match parse(xxe) {
            Ok(f) => assert!(!f[0].title.contains("root:")),
            Err(e) => assert!(e.contains("line"), "{e}"),
        }
    }

    #[test]
    fn export_round_trips() {
        let feeds = [
            ExportFeed {
                id: "wire",
                title: Some("Wire <&> \"World\""),
                url: "https://wire.example.org/world.xml?a=1&b=2",
            },
            ExportFeed {
                id: "notes",
                title: None,
                url: "https://notes.example.net/atom",
            },
        ];
        let text = write("wirewatch feeds", chrono::Utc::now(), &feeds);
        assert!(text.contains("version=\"2.0\""));
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].title, "Wire <&> \"World\"");
        assert_eq!(back[0].url, "https://wire.example.org/world.xml?a=1&b=2");
        assert_eq!(back[1].title, "notes");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Wire & World", "https://x.example/"), "wire-world");
        assert_eq!(
            slug("Курская правда", "https://www.kursk.example.ru/rss"),
            "kursk-example-ru-rss"
        );
        assert_eq!(slug("", "not a url"), "feed");
        assert!(slug(&"a".repeat(100), "").len() <= 40);
    }
}
