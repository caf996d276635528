//! Captioning the test split: every figure gets its row, in order, across
//! batches, an unreadable image included (as an empty caption).

use std::path::Path;

use medcap_dataset::split_csv::SplitRow;
use medcap_model::generation::GenerationConfig;
use medcap_model::tch::Device;
use medcap_study::eval::caption_split;

#[test]
fn every_test_figure_keeps_its_row_across_batches() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data-fixtures/blip");
    let images = [
        "rgb_wide",
        "grey",
        "missing",
        "palette",
        "rgba",
        "rgb_large",
        "gray16",
    ];
    let test: Vec<SplitRow> = images
        .iter()
        .enumerate()
        .map(|(i, name)| SplitRow {
            id: format!("fig{i}"),
            pdf_hash: String::new(),
            image_path: fixtures
                .join(format!("images/{name}.png"))
                .display()
                .to_string(),
            caption: format!("reference {i}"),
            raw_caption: String::new(),
        })
        .collect();
    let decoding = GenerationConfig {
        max_new_tokens: 4,
        ..GenerationConfig::default()
    };
    for batch in [1, 2, 3, 7, 8] {
        let rows = caption_split(
            &fixtures.join("tiny-caption"),
            &test,
            &decoding,
            batch,
            Device::Cpu,
            None,
        )
        .unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["fig0", "fig1", "fig2", "fig3", "fig4", "fig5", "fig6"],
            "batch {batch}"
        );
        for (row, source) in rows.iter().zip(&test) {
            assert_eq!(row.reference, source.caption);
            assert_eq!(
                row.caption.is_empty(),
                row.id == "fig2",
                "batch {batch}: {row:?}"
            );
        }
    }
}
