//! Reading a Prometheus text exposition in tests, and checking it and the
//! dashboards' and alerts' PromQL with the real `promtool`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

/// One series of a scrape.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub series: Vec<Series>,
    /// Family names from `# TYPE` lines, with their type.
    pub families: BTreeMap<String, String>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut series = Vec::new();
        let mut families = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                families.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').expect("series value");
            let (name, labels) = match head.split_once('{') {
                None => (head.to_owned(), BTreeMap::new()),
                Some((name, rest)) => (name.to_owned(), parse_labels(rest.trim_end_matches('}'))),
            };
            series.push(Series {
                name,
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("value of {line}")),
            });
        }
        Scrape { series, families }
    }

    /// The sum of the series `name` whose labels include `labels`; `None` if
    /// there is none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .series
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    /// [`Scrape::sum`], or a panic naming what is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sum(name, labels)
            .unwrap_or_else(|| panic!("no series {name} {labels:?} in the scrape"))
    }

    /// Every name a PromQL expression may use for the scrape's families:
    /// the family names, and `_bucket`, `_sum`, `_count` of histograms.
    pub fn names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (name, kind) in &self.families {
            names.insert(name.clone());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
        names
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    labels
}

/// `GET <base>/metrics` as text.
pub async fn get(base: &str) -> String {
    let resp = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.expect("metrics text")
}

/// Run `promtool` with `args`, `stdin` on its standard input; its exit
/// status and what it printed.
pub fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; `make test` installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The metric names an expression uses: identifiers of our namespace
/// (`inventory_…`) that are not followed by `(` (a function) or inside quotes.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' && (i == 0 || bytes[i - 1] != b'\\') {
            quoted = !quoted;
            i += 1;
            continue;
        }
        let starts = !quoted
            && (c.is_ascii_alphabetic() || c == b'_')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let end = (i..bytes.len())
                .find(|&j| {
                    !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b':')
                })
                .unwrap_or(bytes.len());
            let word = &expr[i..end];
            if word.starts_with("inventory_") {
                names.insert(word.to_owned());
            }
            i = end;
            continue;
        }
        i += 1;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_series_and_names() {
        let s = Scrape::parse(
            "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v \\\"q\\\"\",z=\"1\"} 3\n\
             # TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\nplain 4\n",
        );
        assert_eq!(s.value("a_total", &[("k", "v \"q\"")]), 3.0);
        assert_eq!(s.value("h_count", &[]), 2.0);
        assert_eq!(s.value("plain", &[]), 4.0);
        assert!(s.names().contains("h_bucket") && s.names().contains("a_total"));
        assert_eq!(
            metric_names(
                "sum by (kind) (rate(inventory_scans_total{outcome=\"inventory_x\"}[5m])) / inventory_up"
            ),
            ["inventory_scans_total", "inventory_up"]
                .map(String::from)
                .into()
        );
    }
}
