//! The dashboard's charts, drawn on the server as SVG (no script): stacked bars of a window's
//! series, and the busiest applications as horizontal bars. Every text in them is escaped here.

use std::fmt::Write;

use tessera_core::usage::{Series, Summary};

const WIDTH: f64 = 640.0;
const PLOT: f64 = 110.0;
/// Colours that stay apart for the common colour-vision deficiencies (Okabe and Ito).
const COLOURS: [&str; 6] = [
    "#0072b2", "#d55e00", "#009e73", "#e69f00", "#cc79a7", "#56b4e9",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `HH:MM` (UTC) of a Unix time.
fn clock(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| format!("{:02}:{:02}", d.hour(), d.minute()))
        .unwrap_or_default()
}

/// `MM-DD HH:MM` (UTC) of a Unix time, for the start of a day's window.
fn day_clock(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| format!("{:02}-{:02} {}", u8::from(d.month()), d.day(), clock(t)))
        .unwrap_or_default()
}

/// One chart: the layers' points stacked per step, the highest total marked, the window's
/// start and end under it, and a legend with each layer's total.
pub fn stacked(label: &str, layers: &[(String, &Series)], summary: &Summary) -> String {
    let n = layers.first().map_or(0, |l| l.1.points.len());
    let sums: Vec<i64> = (0..n)
        .map(|i| layers.iter().map(|l| l.1.points[i]).sum())
        .collect();
    let max = sums.iter().copied().max().unwrap_or(0).max(1);
    let described: Vec<String> = layers
        .iter()
        .map(|(name, s)| format!("{name} {}", s.total))
        .collect();
    let legend_rows = layers.len().div_ceil(3);
    let height = PLOT + 34.0 + 18.0 * legend_rows as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(&format!("{label}: {}", described.join(", "))),
        escape(label)
    );
    let bar = WIDTH / n.max(1) as f64;
    for (i, _) in sums.iter().enumerate() {
        let mut top = PLOT;
        for (k, (name, s)) in layers.iter().enumerate() {
            let v = s.points[i];
            if v == 0 {
                continue;
            }
            let h = (v as f64 / max as f64 * (PLOT - 14.0)).max(1.0);
            top -= h;
            let at = clock(summary.since + summary.step * i as i64);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{} {}: {v}</title></rect>"#,
                bar * i as f64,
                (bar - 1.0).max(0.5),
                COLOURS[k % COLOURS.len()],
                escape(&at),
                escape(name)
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{PLOT}" x2="{WIDTH}" y2="{PLOT}" stroke="#767676"/><text x="2" y="11" font-size="11">{max}</text><text x="2" y="{:.0}" font-size="11">{}</text><text x="{WIDTH}" y="{:.0}" font-size="11" text-anchor="end">{} UTC</text>"##,
        PLOT + 14.0,
        if summary.until - summary.since > 3_600 {
            day_clock(summary.since)
        } else {
            clock(summary.since)
        },
        PLOT + 14.0,
        clock(summary.until)
    );
    for (k, (name, s)) in layers.iter().enumerate() {
        let (col, row) = ((k % 3) as f64, (k / 3) as f64);
        let (x, y) = (col * WIDTH / 3.0, PLOT + 32.0 + row * 18.0);
        let _ = write!(
            svg,
            r#"<rect x="{x:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{y:.0}" font-size="12">{} ({})</text>"#,
            y - 9.0,
            COLOURS[k % COLOURS.len()],
            x + 14.0,
            escape(name),
            s.total
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The busiest applications: a bar each, longest first, with its count.
pub fn ranking(label: &str, items: &[(String, i64)]) -> String {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    let height = 22.0 * items.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(&format!(
            "{label}: {}",
            items
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        escape(label)
    );
    if items.is_empty() {
        svg.push_str(r#"<text x="2" y="15" font-size="12">No application was used.</text>"#);
    }
    for (i, (client, n)) in items.iter().enumerate() {
        let y = 22.0 * i as f64;
        let w = *n as f64 / max as f64 * (WIDTH - 260.0);
        let _ = write!(
            svg,
            r#"<text x="0" y="{:.0}" font-size="12">{}</text><rect x="200" y="{:.0}" width="{w:.1}" height="14" fill="{}"/><text x="{:.0}" y="{:.0}" font-size="12">{n}</text>"#,
            y + 15.0,
            escape(&truncate(client, 28)),
            y + 4.0,
            COLOURS[0],
            205.0 + w,
            y + 15.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// One window of the dashboard as the pages show it: totals, and the charts' SVG.
pub struct Panel {
    pub title: &'static str,
    pub totals: Vec<(&'static str, i64)>,
    /// (heading, SVG)
    pub charts: Vec<(&'static str, String)>,
}

impl Panel {
    /// `names`: the applications' names by client id, for the ranking of the busiest (the home
    /// page's; `None` for one application's page, which has none).
    pub fn of(
        title: &'static str,
        s: &Summary,
        names: Option<&std::collections::HashMap<String, String>>,
    ) -> Panel {
        let tokens: i64 = s.tokens.iter().map(|t| t.1.total).sum();
        let sign_ins = [
            ("succeeded".to_owned(), &s.sign_ins_succeeded),
            ("failed".to_owned(), &s.sign_ins_failed),
        ];
        let grants: Vec<(String, &Series)> = s.tokens.iter().map(|(g, t)| (g.clone(), t)).collect();
        let mut charts = vec![
            ("Sign-ins", stacked("Sign-ins", &sign_ins, s)),
            (
                "Tokens issued, by grant",
                if grants.is_empty() {
                    stacked(
                        "Tokens issued",
                        &[(
                            "none".to_owned(),
                            &Series {
                                points: vec![0; s.sign_ins_succeeded.points.len()],
                                total: 0,
                            },
                        )],
                        s,
                    )
                } else {
                    stacked("Tokens issued", &grants, s)
                },
            ),
        ];
        let mut totals = vec![
            ("Sign-ins", s.sign_ins_succeeded.total),
            ("Failed sign-ins", s.sign_ins_failed.total),
            ("Tokens issued", tokens),
        ];
        // A throttled request is refused before it is anyone's: it is counted for all only.
        if let Some(names) = names {
            totals.push(("Throttled requests", s.throttled.total));
            charts.push((
                "Throttled requests",
                stacked(
                    "Throttled requests",
                    &[("answered 429".to_owned(), &s.throttled)],
                    s,
                ),
            ));
            let named: Vec<(String, i64)> = s
                .busiest
                .iter()
                .map(|(id, n)| (names.get(id).cloned().unwrap_or_else(|| id.clone()), *n))
                .collect();
            charts.push((
                "Busiest applications (sign-ins and tokens)",
                ranking("Busiest applications", &named),
            ));
        }
        Panel {
            title,
            totals,
            charts,
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::usage::{Summary, UsageCount};

    #[test]
    fn names_are_escaped_and_bars_drawn() {
        let counts = vec![
            UsageCount {
                minute: 600,
                metric: "token.client_credentials".into(),
                client_id: "<script>x</script>".into(),
                count: 3,
            },
            UsageCount {
                minute: 660,
                metric: "sign_in.succeeded".into(),
                client_id: "web".into(),
                count: 2,
            },
        ];
        let s = Summary::of(&counts, 720, 3600, 60);
        let names = [("web".to_owned(), "Web & <b>".to_owned())]
            .into_iter()
            .collect();
        let panel = super::Panel::of("Last hour", &s, Some(&names));
        let all: String = panel.charts.iter().map(|c| c.1.as_str()).collect();
        assert!(!all.contains("<script>"));
        assert!(all.contains("&lt;script&gt;") && all.contains("Web &amp; &lt;b&gt;"));
        assert_eq!(panel.totals[0], ("Sign-ins", 2));
        assert_eq!(panel.totals[2], ("Tokens issued", 3));
        assert!(all.matches("<rect").count() >= 4);
    }
}
