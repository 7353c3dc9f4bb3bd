//! Extractor tests on article pages written for the project
//! (`tests/fixtures/articles/`, shared with the integration tests).

use super::*;

const WIRE: &str = include_str!("../../tests/fixtures/articles/wire-story.html");
const PAYWALL: &str = include_str!("../../tests/fixtures/articles/paywall.html");
const SPLIT: &str = include_str!("../../tests/fixtures/articles/split.html");
const FRONT: &str = include_str!("../../tests/fixtures/articles/section-front.html");
const RU_UNDECLARED: &str = include_str!("../../tests/fixtures/articles/ru-undeclared.html");
const RU_KOI8: &str = include_str!("../../tests/fixtures/articles/ru-koi8.html");

fn page(html: &str) -> Article {
    extract(html.as_bytes(), None, None).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn has_all(text: &str, words: &[&str]) {
    for w in words {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }
}

#[track_caller]
fn has_none(text: &str, words: &[&str]) {
    for w in words {
        assert!(!text.contains(w), "unexpected {w:?} in:\n{text}");
    }
}

#[test]
fn wire_story_keeps_the_body_and_drops_the_boilerplate() {
    let a = page(WIRE);
    assert_eq!(a.source, Source::Page);
    has_all(
        &a.text,
        &[
            "Two minesweepers of the Bulgarian navy",
            "scrap, a shipwrecked anchor",
            "war-risk premiums",
            "“The channel is open and marked",
            "new container terminal comes into service.",
        ],
    );
    has_none(
        &a.text,
        &[
            "cookies",
            "Business",
            "Advertisement",
            "Cheap ferry",
            "Share on",
            "Kursk",
            "Comments",
            "farmers",
            "Most read",
            "morning shipping briefing",
            "All rights reserved",
            "track(",
            "color: red",
            "Navy\n",
            "Minesweepers clear approach",
        ],
    );
    // Paragraphs stay paragraphs, in page order.
    let paras: Vec<&str> = a.text.split("\n\n").collect();
    let first = paras
        .iter()
        .position(|p| p.starts_with("Two minesweepers"))
        .expect("first paragraph");
    assert!(
        paras[first + 1].starts_with("The sweep covered"),
        "{paras:?}"
    );
    assert!(
        paras
            .last()
            .is_some_and(|p| p.starts_with("The port handled")),
        "{paras:?}"
    );
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
}

#[test]
fn paywall_stub_gives_no_article() {
    let e = extract(PAYWALL.as_bytes(), Some("utf-8"), None).unwrap_err();
    assert!(
        e.to_string().starts_with("no article text found: only "),
        "{e}"
    );
    assert!(e.to_string().contains("paywall"), "{e}");
}

#[test]
fn paragraphs_split_across_divs_are_collected() {
    let a = page(SPLIT);
    has_all(
        &a.text,
        &[
            "The freight line through the Ardent valley",
            "about forty lorries a day",
            "Residents along the road",
            "daytime paths to follow",
        ],
    );
    has_none(
        &a.text,
        &[
            "Subscribe to the Courier",
            "In pictures",
            "Weather",
            "Advertise",
        ],
    );
    // Four paragraphs, in page order, without the headline.
    let paras: Vec<&str> = a.text.split("\n\n").collect();
    assert_eq!(paras.len(), 4, "{}", a.text);
    assert!(paras[0].starts_with("The freight line"), "{}", a.text);
    assert!(paras[3].starts_with("The operator said"), "{}", a.text);
}

#[test]
fn a_section_front_of_links_gives_nothing() {
    let e = extract(FRONT.as_bytes(), None, None).unwrap_err();
    assert!(e.to_string().starts_with("no article text found"), "{e}");
}

#[test]
fn windows_1251_without_a_declaration_is_detected() {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(RU_UNDECLARED);
    assert!(!unmappable);
    for url in [None, Some("https://news.example.ru/a/1")] {
        let a = extract(&bytes, None, url).unwrap_or_else(|e| panic!("{e}"));
        has_all(
            &a.text,
            &[
                "Сапёры инженерных войск",
                "взрывоопасных предметов",
                "грузы зерна",
            ],
        );
        has_none(&a.text, &["Хоккейный", "Главная"]);
        assert_eq!(
            a.warnings,
            ["No charset declared but the bytes look like windows-1251; decoded as windows-1251."]
        );
    }
}

#[test]
fn koi8_r_from_meta_http_equiv() {
    let (bytes, _, unmappable) = encoding_rs::KOI8_R.encode(RU_KOI8);
    assert!(!unmappable);
    let a = extract(&bytes, None, None).unwrap_or_else(|e| panic!("{e}"));
    has_all(
        &a.text,
        &[
            "Паромная переправа через залив",
            "шестидесяти легковых",
            "по выходным",
        ],
    );
    assert!(
        a.text.starts_with("Паромная переправа через залив"),
        "no headline: {}",
        a.text
    );
    has_none(&a.text, &["Наконец-то", "Регион"]);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    // <meta charset> says the same.
    let short = RU_KOI8.replace(
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=koi8-r\">",
        "<meta charset=koi8-r>",
    );
    let (bytes, _, _) = encoding_rs::KOI8_R.encode(&short);
    has_all(
        &page_bytes(&bytes).text,
        &["Паромная переправа через залив"],
    );
    // The HTTP charset wins over the page when the bytes fit both.
    let a = extract(&bytes, Some("koi8-r"), None).unwrap_or_else(|e| panic!("{e}"));
    has_all(&a.text, &["Паромная"]);
}

fn page_bytes(bytes: &[u8]) -> Article {
    extract(bytes, None, None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn utf8_page_misdeclared_as_legacy_is_read_as_utf8() {
    let html = RU_KOI8.replace("charset=koi8-r", "charset=windows-1251");
    let a = page(&html);
    has_all(&a.text, &["Паромная переправа через залив"]);
    assert_eq!(
        a.warnings,
        ["Declared windows-1251 but the bytes are UTF-8; decoded as UTF-8."]
    );
}

#[test]
fn meta_charset_forms() {
    assert_eq!(
        meta_charset(b"<meta charset=\"KOI8-R\">").as_deref(),
        Some("koi8-r")
    );
    assert_eq!(
        meta_charset(b"<META CHARSET='utf-8'/>").as_deref(),
        Some("utf-8")
    );
    assert_eq!(
        meta_charset(
            b"<meta content=\"text/html; charset=windows-1251\" http-equiv=\"content-type\">"
        )
        .as_deref(),
        Some("windows-1251")
    );
    assert_eq!(
        meta_charset(b"<meta name=viewport content=\"width=device-width\">"),
        None
    );
    assert_eq!(meta_charset(b"<p>no meta</p>"), None);
    let late = format!("{}<meta charset=koi8-r>", " ".repeat(META_PRESCAN));
    assert_eq!(meta_charset(late.as_bytes()), None);
}

#[test]
fn attributes() {
    let a = " class=\"a b\" id=x data-y='q>r' hidden";
    assert_eq!(attr(a, "class"), Some("a b"));
    assert_eq!(attr(a, "ID"), Some("x"));
    assert_eq!(attr(a, "data-y"), Some("q>r"));
    assert_eq!(attr(a, "hidden"), Some(""));
    assert_eq!(attr(a, "style"), None);
    assert_eq!(attr("=x ==y class=", "class"), Some(""));
    assert_eq!(attr(" a=\"unterminated", "a"), Some("unterminated"));
}

#[test]
fn json_ld_article_body_is_the_fallback() {
    let body =
        "The council approved the budget on Tuesday, after a debate that ran past midnight, \
                and the harbour dredging programme got its money. "
            .repeat(3);
    let html = format!(
        "<html><head><script type=\"application/ld+json\">{{\"@context\":\"https://schema.org\",\
         \"@graph\":[{{\"@type\":\"WebPage\"}},{{\"@type\":\"NewsArticle\",\"articleBody\":{}}}]}}\
         </script></head><body><div class=\"paywall\"><p>{}</p></div><p>Short teaser.</p></body></html>",
        serde_json::Value::String(body.clone()),
        "Subscribe to read the full story, with our introductory offer for new readers this month. "
            .repeat(3),
    );
    let a = page(&html);
    assert_eq!(a.source, Source::JsonLd);
    assert_eq!(a.text, body.trim());
}

#[test]
fn hidden_and_role_marked_elements_are_dropped() {
    let para =
        "The committee met on Monday to review the harbour plans, and agreed to publish them. ";
    let html = format!(
        "<body><div class=\"text\"><p>{p}</p><p style=\"display: none\">secret one</p>\
         <p hidden>secret two</p><div role=\"navigation\"><p>{n}</p></div><p>{p}</p></div></body>",
        p = para.repeat(2),
        n = "Navigation text that is long enough to be a paragraph, with commas, and more."
    );
    let a = page(&html);
    has_none(&a.text, &["secret", "Navigation text"]);
    assert_eq!(a.text.matches("The committee").count(), 4);
}

#[test]
fn text_is_capped_at_a_paragraph_break() {
    let para = format!("<p>{}</p>", "Word, word and word again. ".repeat(40));
    let html = format!("<article>{}</article>", para.repeat(200));
    let a = page(&html);
    assert!(a.text.chars().count() <= MAX_ARTICLE_CHARS);
    assert!(a.text.ends_with("again."), "cut at a paragraph break");
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
}

/// 100,000 nested `<div>`s (closed and unclosed), stray end tags and
/// unclosed inline elements: linear, no stack overflow.
#[test]
fn deep_nesting_is_bounded() {
    let text = format!(
        "<p>{}</p>",
        "Deep inside the page there is, after all, an article paragraph. ".repeat(5)
    );
    let n = 100_000;
    let cases = [
        format!("{}{text}{}", "<div>".repeat(n), "</div>".repeat(n)),
        format!("{}{text}", "<div>".repeat(n)),
        format!("{}{text}{}", "<span>".repeat(n), "</div>".repeat(n)),
        format!("{}{text}{}", "<li>".repeat(n), "<p>x".repeat(n)),
        format!("{}{text}", "<x-a><td>".repeat(n)),
    ];
    for (i, html) in cases.iter().enumerate() {
        let start = std::time::Instant::now();
        let r = extract(html.as_bytes(), None, None);
        let took = start.elapsed();
        assert!(
            took < std::time::Duration::from_secs(30),
            "case {i}: {took:?}"
        );
        if i < 3 {
            let a = r.unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert!(
                a.text.starts_with("Deep inside the page"),
                "case {i}: {}",
                a.text
            );
        }
    }
}

#[test]
fn element_cap_reads_the_rest_as_text() {
    let html = format!(
        "<article>{}<p>{}</p></article>",
        "<b></b>".repeat(MAX_NODES + 10),
        "The tail paragraph is still read, as text of the last open element, and kept. ".repeat(4)
    );
    let a = page(&html);
    assert!(
        a.warnings.iter().any(|w| w.contains("more than")),
        "{:?}",
        a.warnings
    );
    assert!(a.text.contains("The tail paragraph"));
}

#[test]
fn never_panics_on_nasty_input() {
    let nasty = [
        "",
        "<",
        "&",
        "<html><head><body>",
        "</body></html>",
        "<head>text",
        "<script>",
        "<script type=application/ld+json>{",
        "<p><p><p>",
        "</p></p>",
        "<br></br>",
        "<meta charset=>",
        "<meta charset=x-klingon>",
        "<table><td><tr><td>",
        "\u{FEFF}<p>x",
    ];
    for s in nasty {
        let _ = extract(s.as_bytes(), None, None);
        let _ = extract(s.repeat(50).as_bytes(), Some("utf-16"), Some("http://a.b/"));
    }
    let alphabet: Vec<char> = "<>&#;/!-=\"' \napdivscrtyle[CDAT]?,.é".chars().collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3_000 {
        let mut s = String::new();
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        for _ in 0..(state >> 56) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            s.push(alphabet[(state >> 33) as usize % alphabet.len()]);
        }
        if let Ok(a) = extract(s.as_bytes(), None, None) {
            assert!(a.text.chars().count() >= MIN_ARTICLE_CHARS);
        }
    }
}
