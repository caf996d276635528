//! Each release format on a small release written here in that format's
//! exact layout (synthetic images, captions written for the test), through
//! `prepare`: detection, the records it yields, the grouping key, the
//! licence, the published split, and each format's own malformed input.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use medcap_dataset::formats::{ReleaseFormat, TableColumns};
use medcap_dataset::prepare::{FigureRow, NoProgress, PrepareOptions, PrepareSummary, prepare};
use medcap_dataset::split::SplitPlan;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A 32x32 picture, JPEG or PNG by extension.
fn image(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([shade, (x * 8) as u8, (y * 8) as u8])
    })
    .save(path)
    .unwrap();
}

fn plan() -> SplitPlan {
    SplitPlan {
        test: 2,
        val: 1,
        ft1: 2,
        ft2_extra: 1,
    }
}

fn run(input: &Path, out: &Path, options: PrepareOptions) -> (PrepareSummary, Vec<FigureRow>) {
    let summary = prepare(input, out, &options, &NoProgress).unwrap();
    let mut reader = csv::Reader::from_path(out.join("figures.csv")).unwrap();
    let rows = reader.deserialize().map(Result::unwrap).collect();
    (summary, rows)
}

fn options(format: Option<ReleaseFormat>) -> PrepareOptions {
    PrepareOptions {
        format,
        plan: plan(),
        seed: 3,
        ..PrepareOptions::default()
    }
}

fn row<'a>(rows: &'a [FigureRow], id: &str) -> &'a FigureRow {
    rows.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

/// ROCO's repository: data/{train,validation,test}/{radiology,non-radiology}/.
fn roco(root: &Path) {
    let figures: [(&str, &str, &str, u32, &str); 8] = [
        // split, category, id, PMC article, licence
        ("train", "radiology", "ROCO_00001", 101, "CC BY"),
        ("train", "radiology", "ROCO_00002", 101, "CC BY-NC"),
        ("train", "radiology", "ROCO_00003", 102, "CC BY"),
        ("train", "radiology", "ROCO_00004", 103, "CC BY-NC-ND"),
        ("validation", "radiology", "ROCO_00005", 104, "CC BY"),
        ("test", "radiology", "ROCO_00006", 105, "CC BY"),
        ("test", "radiology", "ROCO_00007", 106, "CC BY"),
        ("test", "non-radiology", "ROCO_00008", 107, "CC BY"),
    ];
    for (split, category, id, pmc, licence) in figures {
        let dir = root.join("data").join(split).join(category);
        let append = |name: &str, line: String| {
            let path = dir.join(name);
            let mut text = std::fs::read_to_string(&path).unwrap_or_default();
            text.push_str(&line);
            write(&path, &text);
        };
        if !dir.join("licences.txt").exists() {
            append("licences.txt", "ROCO_ID,PMC_ID,CC\n".into());
        }
        append(
            "captions.txt",
            format!("{id}\t Chest radiograph {id} showing a small effusion (arrow).\n"),
        );
        append("keywords.txt", format!("{id}\t\tchest\tradiograph\n"));
        append(
            "dlinks.txt",
            format!(
                "{id}\twget -r ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/00/00/PMC{pmc}.tar.gz -P /path/to/Dir\tfig-{id}.jpg\n"
            ),
        );
        // ROCO_00003's licence row is missing: its article comes from dlinks.txt.
        if id != "ROCO_00003" {
            append(
                "licences.txt",
                format!("{id},PMC{pmc}_fig-{id}.jpg,{licence}\n"),
            );
        }
        // ROCO_00004's image was never fetched.
        if id != "ROCO_00004" {
            image(&dir.join("images").join(format!("{id}.jpg")), 40);
        }
    }
    // Malformed lines: no tab, and an id that is a path.
    let captions = root.join("data/train/radiology/captions.txt");
    let mut text = std::fs::read_to_string(&captions).unwrap();
    text.push_str("ROCO_00009 a chest line without a tab\n../../etc/passwd\tchest\n");
    write(&captions, &text);
}

#[test]
fn roco_is_read_with_articles_licences_and_its_published_split() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("roco-dataset");
    roco(&root);
    assert_eq!(
        ReleaseFormat::detect(&root).unwrap(),
        ReleaseFormat::Roco {
            non_radiology: false
        }
    );
    let (summary, rows) = run(&root, &tmp.path().join("out"), options(None));
    assert_eq!(summary.format, "roco");
    // 7 radiology figures and 2 malformed lines; non-radiology left out.
    assert_eq!(summary.lines, 9);
    assert_eq!(summary.malformed, 2);
    assert_eq!(summary.images.missing, 1);
    assert_eq!(summary.usable, 6);
    assert!(rows.iter().all(|r| r.id != "ROCO_00008"));
    let first = row(&rows, "ROCO_00001");
    assert_eq!(first.pdf_hash, "PMC101");
    assert_eq!(first.license, "CC BY");
    assert_eq!(
        first.raw_caption,
        "Chest radiograph ROCO_00001 showing a small effusion (arrow)."
    );
    assert!(!first.caption.contains("(arrow)"), "{}", first.caption);
    assert_eq!(row(&rows, "ROCO_00003").pdf_hash, "PMC102");
    assert_eq!(row(&rows, "ROCO_00004").dropped, "image_missing");
    // The two figures of article PMC101 land in the same split.
    assert_eq!(
        row(&rows, "ROCO_00001").split,
        row(&rows, "ROCO_00002").split
    );
    let problems = std::fs::read_to_string(tmp.path().join("out/problems.jsonl")).unwrap();
    assert!(
        problems.contains("no tab") && problems.contains("is not a ROCO figure id"),
        "{problems}"
    );

    // The published split kept, and the non-radiology figures read too.
    let (summary, rows) = run(
        &root,
        &tmp.path().join("published"),
        PrepareOptions {
            published_split: true,
            ..options(Some(ReleaseFormat::Roco {
                non_radiology: true,
            }))
        },
    );
    assert_eq!(summary.lines, 10);
    for (id, split) in [
        ("ROCO_00005", "val"),
        ("ROCO_00006", "test"),
        ("ROCO_00007", "test"),
        ("ROCO_00008", "test"),
    ] {
        assert_eq!(row(&rows, id).split, split, "{id}");
    }
    for id in ["ROCO_00001", "ROCO_00002", "ROCO_00003"] {
        assert!(
            ["ft1", "ft2_extra", "unused"].contains(&row(&rows, id).split.as_str()),
            "{id}: {}",
            row(&rows, id).split
        );
    }

    // Only CC BY: the CC BY-NC and CC BY-NC-ND figures are dropped and
    // counted, and so is the one whose licence is not recorded.
    let (summary, rows) = run(
        &root,
        &tmp.path().join("ccby"),
        PrepareOptions {
            licences: Some(vec!["cc-by".into()]),
            ..options(None)
        },
    );
    assert_eq!(summary.licence_excluded, 3);
    assert_eq!(row(&rows, "ROCO_00003").dropped, "licence:");
    assert_eq!(row(&rows, "ROCO_00002").dropped, "licence:CC BY-NC");
}

#[test]
fn rocov2_csvs_are_read_per_split() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rocov2");
    let mut ids = Vec::new();
    for (split, n) in [("train", 4), ("valid", 1), ("test", 2)] {
        let mut csv = String::from("ID,Caption\n");
        for i in 0..n {
            let id = format!("ROCOv2_2023_{split}_{i:06}");
            csv.push_str(&format!(
                "{id},\"Chest X-ray, PA view: {split} figure {i}\"\n"
            ));
            image(&root.join(split).join(format!("{id}.jpg")), 60);
            ids.push(id);
        }
        if split == "train" {
            // A row whose id is a path, and one without a caption.
            csv.push_str("../escape,Chest CT\nROCOv2_2023_train_000099,\n");
        }
        write(&root.join(format!("{split}_captions.csv")), &csv);
        write(&root.join(format!("{split}_concepts.csv")), "ID,CUIs\n");
    }
    assert_eq!(ReleaseFormat::detect(&root).unwrap(), ReleaseFormat::Rocov2);
    let (summary, rows) = run(
        &root,
        &tmp.path().join("out"),
        PrepareOptions {
            published_split: true,
            ..options(None)
        },
    );
    assert_eq!(summary.format, "rocov2");
    assert_eq!(summary.malformed, 1);
    assert_eq!(summary.empty_caption, 1);
    assert_eq!(summary.usable, 7);
    let test = row(&rows, "ROCOv2_2023_test_000001");
    assert_eq!(
        (test.split.as_str(), test.pdf_hash.as_str()),
        ("test", test.id.as_str())
    );
    assert_eq!(row(&rows, "ROCOv2_2023_valid_000000").split, "val");
    assert!(ids.iter().all(|id| rows.iter().any(|r| &r.id == id)));
}

#[test]
fn pmc_oa_jsonl_is_grouped_by_article() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pmc-oa");
    let mut jsonl = String::new();
    for (i, pmcid) in [
        (0, "PMC11"),
        (1, "PMC11"),
        (2, "PMC12"),
        (3, "PMC13"),
        (4, "PMC14"),
        (5, "PMC15"),
    ] {
        let image_name = format!("{pmcid}_fig{i}.jpg");
        jsonl.push_str(&format!(
            "{{\"image\": \"{image_name}\", \"caption\": \"Chest CT, axial slice {i}.\", \"pmcid\": \"{pmcid}\"}}\n"
        ));
        image(&root.join("images").join(&image_name), 90);
    }
    // No pmcid: the article comes from the image name.
    jsonl.push_str("{\"image\": \"PMC16_fig9.jpg\", \"caption\": \"Chest film.\"}\n");
    image(&root.join("images/PMC16_fig9.jpg"), 90);
    // Cut JSON, a blank line, a field missing; then a line that is not UTF-8.
    jsonl.push_str("{\"image\": \"broken\n\n{\"caption\": \"chest, but no image field\"}\n");
    write(&root.join("pmc_oa.jsonl"), &jsonl);
    let mut bytes = std::fs::read(root.join("pmc_oa.jsonl")).unwrap();
    bytes.extend_from_slice(b"{\"image\": \"x\xC3.jpg\", \"caption\": \"chest\"}\n");
    std::fs::write(root.join("pmc_oa.jsonl"), bytes).unwrap();
    assert_eq!(ReleaseFormat::detect(&root).unwrap(), ReleaseFormat::PmcOa);
    let (summary, rows) = run(&root, &tmp.path().join("out"), options(None));
    assert_eq!(summary.format, "pmc-oa");
    assert_eq!(summary.malformed, 3);
    assert_eq!(summary.usable, 7);
    assert_eq!(row(&rows, "PMC16_fig9.jpg").pdf_hash, "PMC16");
    assert_eq!(
        row(&rows, "PMC11_fig0.jpg").split,
        row(&rows, "PMC11_fig1.jpg").split
    );
}

#[test]
fn a_table_names_its_columns_and_its_images_are_the_users() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    let absolute = tmp.path().join("elsewhere/abs.png");
    image(&absolute, 10);
    let mut csv = String::from("file,text,paper,cc\n");
    for i in 0..6 {
        image(&dir.join(format!("img/{i}.png")), 20);
        csv.push_str(&format!(
            "img/{i}.png,\"Chest radiograph {i}, PA\",paper{},CC BY\n",
            i / 2
        ));
    }
    csv.push_str(&format!(
        "{},Chest film,paper9,CC BY-NC\n",
        absolute.display()
    ));
    csv.push_str("img/missing.png,Chest film,paper10,CC BY\n");
    csv.push_str(",Chest film without an image,paper11,CC BY\n");
    write(&dir.join("figures.csv"), &csv);
    let columns = TableColumns::parse("image=file,caption=text,group=paper,license=cc").unwrap();
    let (summary, rows) = run(
        &dir.join("figures.csv"),
        &tmp.path().join("out"),
        options(Some(ReleaseFormat::Table(columns.clone()))),
    );
    assert_eq!(summary.format, "table");
    assert_eq!(summary.malformed, 1);
    assert_eq!(summary.images.missing, 1);
    assert_eq!(summary.usable, 7);
    assert_eq!(row(&rows, "img/0.png").split, row(&rows, "img/1.png").split);
    assert_eq!(
        row(&rows, &absolute.display().to_string()).license,
        "CC BY-NC"
    );

    // JSONL with the same columns.
    let jsonl: String = (0..6)
        .map(|i| format!("{{\"file\": \"img/{i}.png\", \"text\": \"Chest film {i}\", \"paper\": \"p{i}\", \"cc\": null}}\n"))
        .collect();
    write(&dir.join("figures.jsonl"), &jsonl);
    let (summary, _) = run(
        &dir.join("figures.jsonl"),
        &tmp.path().join("out-jsonl"),
        options(Some(ReleaseFormat::Table(columns))),
    );
    assert_eq!(summary.usable, 6);

    // A table has no published split: asking for it is an error, not a set of empty splits.
    let err = prepare(
        &dir.join("figures.csv"),
        &tmp.path().join("out-published"),
        &PrepareOptions {
            published_split: true,
            ..options(Some(ReleaseFormat::Table(
                TableColumns::parse("image=file,caption=text,group=paper").unwrap(),
            )))
        },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("records no published split"), "{err}");

    // A column the table does not have is named with the header.
    let wrong = TableColumns::parse("image=path,caption=text,group=paper").unwrap();
    let err = prepare(
        &dir.join("figures.csv"),
        &tmp.path().join("out-wrong"),
        &options(Some(ReleaseFormat::Table(wrong))),
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`path`") && err.contains("file, text, paper, cc"),
        "{err}"
    );
}

#[test]
fn an_ambiguous_directory_names_the_formats_it_looks_like() {
    let tmp = tempfile::tempdir().unwrap();
    let root: PathBuf = tmp.path().join("both");
    roco(&root);
    write(
        &root.join("extra.jsonl"),
        "{\"image\": \"a.jpg\", \"caption\": \"chest\"}\n",
    );
    let err = ReleaseFormat::detect(&root).unwrap_err().to_string();
    assert!(
        err.contains("roco and pmc-oa") && err.contains("--format"),
        "{err}"
    );
}

/// A Hugging Face-style parquet file: `image` {bytes, path}, `image_id`,
/// `caption`, written with the parquet crate's Arrow writer (snappy, as
/// Hugging Face writes).
/// One parquet row: image id, caption, image bytes (each may be missing).
type ParquetRow<'a> = (Option<&'a str>, Option<&'a str>, Option<Vec<u8>>);

fn parquet_file(path: &Path, rows: &[ParquetRow<'_>]) {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
    use arrow_schema::{DataType, Field, Fields};

    let bytes = BinaryArray::from_iter(rows.iter().map(|r| r.2.as_deref()));
    let paths = StringArray::from_iter(rows.iter().map(|r| r.0.map(|id| format!("{id}.jpg"))));
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    let image = StructArray::new(
        fields,
        vec![Arc::new(bytes) as ArrayRef, Arc::new(paths) as ArrayRef],
        None,
    );
    let ids = StringArray::from_iter(rows.iter().map(|r| r.0));
    let captions = StringArray::from_iter(rows.iter().map(|r| r.1));
    let batch = RecordBatch::try_from_iter([
        ("image", Arc::new(image) as ArrayRef),
        ("image_id", Arc::new(ids) as ArrayRef),
        ("caption", Arc::new(captions) as ArrayRef),
    ])
    .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn jpeg_bytes(shade: u8) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.jpg");
    image(&path, shade);
    std::fs::read(path).unwrap()
}

#[test]
fn rocov2_parquet_images_are_written_under_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rocov2-hf");
    let jpeg = jpeg_bytes(70);
    let mut train = Vec::new();
    let ids: Vec<String> = (0..4)
        .map(|i| format!("ROCOv2_2023_train_{i:06}"))
        .collect();
    for id in &ids {
        train.push((
            Some(id.as_str()),
            Some("Chest X-ray, frontal view."),
            Some(jpeg.clone()),
        ));
    }
    // No image bytes, bytes that are not an image, no id.
    train.push((Some("ROCOv2_2023_train_000090"), Some("Chest CT."), None));
    train.push((
        Some("ROCOv2_2023_train_000091"),
        Some("Chest CT."),
        Some(b"not an image".to_vec()),
    ));
    train.push((None, Some("Chest CT."), Some(jpeg.clone())));
    parquet_file(&root.join("data/train-00000-of-00001.parquet"), &train);
    parquet_file(
        &root.join("data/validation-00000-of-00001.parquet"),
        &[(
            Some("ROCOv2_2023_valid_000001"),
            Some("Chest radiograph."),
            Some(jpeg.clone()),
        )],
    );
    parquet_file(
        &root.join("data/test-00000-of-00001.parquet"),
        &[(
            Some("ROCOv2_2023_test_000001"),
            Some("Chest film, AP."),
            Some(jpeg.clone()),
        )],
    );
    let before: Vec<_> = walk(&root);
    assert_eq!(ReleaseFormat::detect(&root).unwrap(), ReleaseFormat::Rocov2);
    let out = tmp.path().join("out");
    let (summary, rows) = run(
        &root,
        &out,
        PrepareOptions {
            published_split: true,
            ..options(None)
        },
    );
    assert_eq!(summary.malformed, 1);
    assert_eq!(summary.images.missing, 1);
    assert_eq!(summary.images.undecodable, 1);
    assert_eq!(summary.usable, 6);
    let test = row(&rows, "ROCOv2_2023_test_000001");
    assert_eq!(test.split, "test");
    // Stored relative to figures.csv, inside the output, and equal to the parquet's bytes.
    assert_eq!(test.image_path, "images/test/ROCOv2_2023_test_000001.jpg");
    assert_eq!(std::fs::read(out.join(&test.image_path)).unwrap(), jpeg);
    // The input is untouched.
    assert_eq!(walk(&root), before);
    // A rerun into the same output finds the same images.
    let (again, _) = run(&root, &out, options(Some(ReleaseFormat::Rocov2)));
    assert_eq!(again.usable, 6);
}

fn walk(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push((entry.path(), entry.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

/// Every figure of `format`, no selection.
fn keep_all(format: ReleaseFormat) -> PrepareOptions {
    PrepareOptions {
        selector: Box::new(medcap_dataset::filter::KeepAll),
        ..options(Some(format))
    }
}

/// `problems.jsonl` of an output, as JSON values.
fn problems(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("problems.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_repeated_parquet_id_never_writes_over_the_kept_rows_image() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rocov2-hf");
    let (first, second, third) = (jpeg_bytes(40), jpeg_bytes(200), jpeg_bytes(120));
    parquet_file(
        &root.join("data/train-00000-of-00002.parquet"),
        &[
            (
                Some("ROCOv2_a"),
                Some("Chest X-ray, frontal view."),
                Some(first.clone()),
            ),
            (
                Some("ROCOv2_b"),
                Some("Chest CT, axial."),
                Some(third.clone()),
            ),
            (
                Some("ROCOv2_a"),
                Some("Abdominal CT."),
                Some(second.clone()),
            ),
        ],
    );
    // The same id in the next shard of the split.
    parquet_file(
        &root.join("data/train-00001-of-00002.parquet"),
        &[(Some("ROCOv2_b"), Some("Knee MRI."), Some(second.clone()))],
    );
    let out = tmp.path().join("out");
    let (summary, rows) = run(&root, &out, keep_all(ReleaseFormat::Rocov2));
    assert_eq!(summary.duplicates, 2);
    for (id, caption, bytes) in [
        ("ROCOv2_a", "Chest X-ray, frontal view.", &first),
        ("ROCOv2_b", "Chest CT, axial.", &third),
    ] {
        let kept = rows
            .iter()
            .find(|r| r.id == id && r.dropped.is_empty())
            .unwrap();
        assert_eq!(kept.raw_caption, caption);
        // The kept caption trains on its own picture.
        assert_eq!(
            &std::fs::read(out.join(&kept.image_path)).unwrap(),
            bytes,
            "{id}"
        );
    }
    // Each duplicate names both places.
    let duplicates: Vec<String> = problems(&out)
        .iter()
        .filter(|p| p["kind"] == "duplicate")
        .map(|p| p["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(duplicates.len(), 2, "{duplicates:?}");
    assert!(
        duplicates
            .iter()
            .any(|d| d.contains("train-00000-of-00002.parquet:3")
                && d.contains("train-00000-of-00002.parquet:1")),
        "{duplicates:?}"
    );
    assert!(
        duplicates
            .iter()
            .any(|d| d.contains("train-00001-of-00002.parquet:1")
                && d.contains("train-00000-of-00002.parquet:2")),
        "{duplicates:?}"
    );
}

#[test]
fn a_csv_record_is_what_strict_csv_reads_and_its_place_is_its_first_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rocov2");
    // Line 2: a caption spanning lines 2-3 (quoted); line 4: an unquoted
    // comma (3 fields: never cut to the first part of the caption); line 5:
    // no caption field at all; line 6: an id test_captions.csv (read first)
    // also has.
    let csv = "ID,Caption\n\
               ROCOv2_1,\"Chest X-ray,\nfrontal view.\"\n\
               ROCOv2_2,Chest CT, axial view.\n\
               ROCOv2_3\n\
               ROCOv2_4,Chest radiograph.\n";
    write(&root.join("train_captions.csv"), csv);
    write(
        &root.join("test_captions.csv"),
        "ID,Caption\nROCOv2_4,Another caption.\n",
    );
    for id in ["ROCOv2_1", "ROCOv2_2", "ROCOv2_3", "ROCOv2_4"] {
        image(&root.join("train").join(format!("{id}.jpg")), 90);
    }
    let out = tmp.path().join("out");
    let (summary, rows) = run(&root, &out, keep_all(ReleaseFormat::Rocov2));
    assert_eq!((summary.malformed, summary.duplicates), (2, 1));
    assert_eq!(
        row(&rows, "ROCOv2_1").raw_caption,
        "Chest X-ray,\nfrontal view."
    );
    assert!(
        rows.iter()
            .all(|r| r.id != "ROCOv2_2" && r.id != "ROCOv2_3")
    );
    let problems = problems(&out);
    let malformed: Vec<(u64, &str)> = problems
        .iter()
        .filter(|p| p["kind"] == "malformed")
        .map(|p| (p["line"].as_u64().unwrap(), p["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(malformed.len(), 2, "{malformed:?}");
    assert_eq!(malformed[0].0, 4);
    assert!(
        malformed[0].1.contains("3 fields but the header has 2"),
        "{malformed:?}"
    );
    assert_eq!(malformed[1].0, 5);
    assert!(
        malformed[1].1.contains("1 fields but the header has 2"),
        "{malformed:?}"
    );
    let duplicate = problems.iter().find(|p| p["kind"] == "duplicate").unwrap();
    let detail = duplicate["detail"].as_str().unwrap();
    assert!(
        detail.contains("train_captions.csv:6") && detail.contains("test_captions.csv:2"),
        "{detail}"
    );
    // --strict stops at the first one, naming its line.
    let err = prepare(
        &root,
        &tmp.path().join("strict"),
        &PrepareOptions {
            strict: true,
            ..keep_all(ReleaseFormat::Rocov2)
        },
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("4") && err.contains("3 fields"), "{err}");
}

#[test]
fn a_jsonl_table_cell_that_is_not_text_is_reported_not_stringified() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("table");
    for name in ["a.png", "b.png", "c.png", "d.png"] {
        image(&dir.join(name), 30);
    }
    write(
        &dir.join("figures.jsonl"),
        "{\"image\": \"a.png\", \"caption\": \"Chest X-ray.\", \"paper\": 7}\n\
         {\"image\": \"b.png\", \"caption\": [\"Chest\", \"CT\"], \"paper\": 8}\n\
         {\"image\": \"c.png\", \"paper\": 9}\n\
         {\"image\": \"d.png\", \"caption\": \"Knee MRI.\", \"paper\": {\"id\": 1}}\n",
    );
    let columns = TableColumns::parse("image=image,caption=caption,group=paper").unwrap();
    let out = tmp.path().join("out");
    let (summary, rows) = run(
        &dir.join("figures.jsonl"),
        &out,
        keep_all(ReleaseFormat::Table(columns)),
    );
    assert_eq!(summary.malformed, 3);
    // A numeric group is its digits.
    assert_eq!(row(&rows, "a.png").pdf_hash, "7");
    let details: Vec<String> = problems(&out)
        .iter()
        .map(|p| format!("{}: {}", p["line"], p["detail"].as_str().unwrap()))
        .collect();
    assert!(
        details[0].starts_with("2: ") && details[0].contains("`caption` holds an array"),
        "{details:?}"
    );
    assert!(
        details[1].starts_with("3: ") && details[1].contains("no `caption` key"),
        "{details:?}"
    );
    assert!(
        details[2].starts_with("4: ") && details[2].contains("`paper` holds an object"),
        "{details:?}"
    );
}

#[test]
fn crlf_and_blank_lines_do_not_shift_a_records_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rocov2");
    // Lines: 1 header, 2 good, 3 blank, 4 extra field, 5-6 a quoted caption
    // over two lines, 7 extra field.
    let csv = "ID,Caption\r\nROCOv2_1,Chest X-ray.\r\n\r\nROCOv2_2,Chest CT, axial.\r\n\
               ROCOv2_3,\"Chest film,\r\nPA view.\"\r\nROCOv2_4,Knee, MRI.\r\n";
    write(&root.join("train_captions.csv"), csv);
    for id in ["ROCOv2_1", "ROCOv2_3"] {
        image(&root.join("train").join(format!("{id}.jpg")), 90);
    }
    let out = tmp.path().join("out");
    let (summary, rows) = run(&root, &out, keep_all(ReleaseFormat::Rocov2));
    assert_eq!(summary.malformed, 2);
    assert_eq!(row(&rows, "ROCOv2_1").line, 2);
    assert_eq!(row(&rows, "ROCOv2_3").line, 5);
    let lines: Vec<u64> = problems(&out)
        .iter()
        .filter(|p| p["kind"] == "malformed")
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 7]);
}

#[test]
fn a_roco_licence_record_that_does_not_fit_is_reported_not_guessed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("roco");
    roco(&root);
    let licences = root.join("data/train/radiology/licences.txt");
    let mut text = std::fs::read_to_string(&licences).unwrap();
    // A licence holding a comma unquoted, and an id given again.
    text.push_str("ROCO_00090,PMC900_x.jpg,CC BY, NC\nROCO_00001,PMC101_a.jpg,CC0\n");
    std::fs::write(&licences, text).unwrap();
    let out = tmp.path().join("out");
    let (_, rows) = run(
        &root,
        &out,
        keep_all(ReleaseFormat::Roco {
            non_radiology: false,
        }),
    );
    // The first licence of ROCO_00001 is kept.
    assert_eq!(row(&rows, "ROCO_00001").license, "CC BY");
    let details: Vec<String> = problems(&out)
        .iter()
        .filter(|p| p["kind"] == "malformed")
        .map(|p| p["detail"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("licences.txt") && d.contains("4 fields")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("ROCO_00001 was already given on line 2")),
        "{details:?}"
    );
}
