//! Changing a config file the way a person would: new `[[feed]]` tables
//! appended at the end, every comment and every other line kept as written.

use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Table};

/// A `[[feed]]` to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeed {
    pub id: String,
    pub url: String,
    pub title: Option<String>,
}

/// `text` with `feeds` appended as `[[feed]]` tables, the first one headed
/// by `note` as a comment.
pub fn append_feeds(text: &str, feeds: &[NewFeed], note: &str) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let item = doc
        .entry("feed")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    let Some(array) = item.as_array_of_tables_mut() else {
        return Err("`feed` is not written as [[feed]] tables".into());
    };
    for (i, f) in feeds.iter().enumerate() {
        let mut t = Table::new();
        t.insert("id", value(f.id.as_str()));
        t.insert("url", value(f.url.as_str()));
        if let Some(title) = f.title.as_deref().filter(|t| !t.is_empty()) {
            t.insert("title", value(title));
        }
        if i == 0 {
            let comment: String = note.lines().map(|l| format!("# {l}\n")).collect();
            t.decor_mut().set_prefix(format!("\n{comment}"));
        } else {
            t.decor_mut().set_prefix("\n");
        }
        array.push(t);
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_keeps_comments() {
        let text = "# main config\n[daemon]\npoll_interval = \"5m\" # five minutes\n\n\
                    [[feed]]\nid = \"a\"\nurl = \"https://a.example/rss\"\n\n\
                    # where alerts go\n[[sink]]\nid = \"out\"\ntype = \"stdout\"\n";
        let out = append_feeds(
            text,
            &[
                NewFeed {
                    id: "b".into(),
                    url: "https://b.example/rss".into(),
                    title: Some("B \"quoted\" wire".into()),
                },
                NewFeed {
                    id: "c".into(),
                    url: "https://c.example/atom".into(),
                    title: None,
                },
            ],
            "imported from subs.opml",
        )
        .unwrap();
        for kept in ["# main config", "# five minutes", "# where alerts go"] {
            assert!(out.contains(kept), "{kept} lost:\n{out}");
        }
        assert!(
            out.contains("# imported from subs.opml\n[[feed]]\nid = \"b\""),
            "{out}"
        );
        let doc: DocumentMut = out.parse().unwrap();
        let feeds = doc["feed"].as_array_of_tables().unwrap();
        assert_eq!(feeds.len(), 3);
        assert_eq!(
            feeds.get(1).unwrap()["title"].as_str(),
            Some("B \"quoted\" wire")
        );
        assert!(feeds.get(2).unwrap().get("title").is_none());
        assert_eq!(doc["sink"].as_array_of_tables().unwrap().len(), 1);
    }

    #[test]
    fn a_file_without_feeds_gets_its_first() {
        let out = append_feeds(
            "[daemon]\n",
            &[NewFeed {
                id: "a".into(),
                url: "https://a.example/".into(),
                title: None,
            }],
            "x",
        )
        .unwrap();
        let doc: DocumentMut = out.parse().unwrap();
        assert_eq!(doc["feed"].as_array_of_tables().unwrap().len(), 1);
        assert!(append_feeds("feed = 3\n", &[], "x").is_err());
    }
}
