//! Feature flags of the superblock (`s_feature_compat` 0x5C,
//! `s_feature_incompat` 0x60, `s_feature_ro_compat` 0x64) and their names as
//! e2fsprogs prints them.

/// `s_feature_compat` bits.
pub mod compat {
    /// dir_prealloc
    pub const DIR_PREALLOC: u32 = 0x1;
    /// imagic_inodes
    pub const IMAGIC_INODES: u32 = 0x2;
    /// has_journal
    pub const HAS_JOURNAL: u32 = 0x4;
    /// ext_attr
    pub const EXT_ATTR: u32 = 0x8;
    /// resize_inode
    pub const RESIZE_INODE: u32 = 0x10;
    /// dir_index
    pub const DIR_INDEX: u32 = 0x20;
    /// lazy_bg
    pub const LAZY_BG: u32 = 0x40;
    /// exclude_bitmap (snapshot patches, never merged)
    pub const EXCLUDE_BITMAP: u32 = 0x100;
    /// sparse_super2
    pub const SPARSE_SUPER2: u32 = 0x200;
    /// fast_commit
    pub const FAST_COMMIT: u32 = 0x400;
    /// stable_inodes
    pub const STABLE_INODES: u32 = 0x800;
    /// orphan_file
    pub const ORPHAN_FILE: u32 = 0x1000;
}

/// `s_feature_incompat` bits.
pub mod incompat {
    /// compression
    pub const COMPRESSION: u32 = 0x1;
    /// filetype
    pub const FILETYPE: u32 = 0x2;
    /// needs_recovery
    pub const RECOVER: u32 = 0x4;
    /// journal_dev
    pub const JOURNAL_DEV: u32 = 0x8;
    /// meta_bg
    pub const META_BG: u32 = 0x10;
    /// extent
    pub const EXTENTS: u32 = 0x40;
    /// 64bit
    pub const BIT64: u32 = 0x80;
    /// mmp
    pub const MMP: u32 = 0x100;
    /// flex_bg
    pub const FLEX_BG: u32 = 0x200;
    /// ea_inode
    pub const EA_INODE: u32 = 0x400;
    /// dirdata
    pub const DIRDATA: u32 = 0x1000;
    /// metadata_csum_seed
    pub const CSUM_SEED: u32 = 0x2000;
    /// large_dir
    pub const LARGEDIR: u32 = 0x4000;
    /// inline_data
    pub const INLINE_DATA: u32 = 0x8000;
    /// encrypt
    pub const ENCRYPT: u32 = 0x10000;
    /// casefold
    pub const CASEFOLD: u32 = 0x20000;
}

/// `s_feature_ro_compat` bits.
pub mod ro_compat {
    /// sparse_super
    pub const SPARSE_SUPER: u32 = 0x1;
    /// large_file
    pub const LARGE_FILE: u32 = 0x2;
    /// btree_dir (never used)
    pub const BTREE_DIR: u32 = 0x4;
    /// huge_file
    pub const HUGE_FILE: u32 = 0x8;
    /// uninit_bg
    pub const GDT_CSUM: u32 = 0x10;
    /// dir_nlink
    pub const DIR_NLINK: u32 = 0x20;
    /// extra_isize
    pub const EXTRA_ISIZE: u32 = 0x40;
    /// snapshot
    pub const HAS_SNAPSHOT: u32 = 0x80;
    /// quota
    pub const QUOTA: u32 = 0x100;
    /// bigalloc
    pub const BIGALLOC: u32 = 0x200;
    /// metadata_csum
    pub const METADATA_CSUM: u32 = 0x400;
    /// replica
    pub const REPLICA: u32 = 0x800;
    /// read-only
    pub const READONLY: u32 = 0x1000;
    /// project
    pub const PROJECT: u32 = 0x2000;
    /// shared_blocks
    pub const SHARED_BLOCKS: u32 = 0x4000;
    /// verity
    pub const VERITY: u32 = 0x8000;
    /// orphan_present
    pub const ORPHAN_PRESENT: u32 = 0x10000;
}

/// Which of the three words a feature lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// `s_feature_compat`
    Compat,
    /// `s_feature_incompat`
    Incompat,
    /// `s_feature_ro_compat`
    RoCompat,
}

/// e2p's names, in the order `dumpe2fs` lists them (compat, incompat,
/// ro_compat; each by bit).
const NAMES: &[(Word, u32, &str)] = &[
    (Word::Compat, compat::DIR_PREALLOC, "dir_prealloc"),
    (Word::Compat, compat::IMAGIC_INODES, "imagic_inodes"),
    (Word::Compat, compat::HAS_JOURNAL, "has_journal"),
    (Word::Compat, compat::EXT_ATTR, "ext_attr"),
    (Word::Compat, compat::RESIZE_INODE, "resize_inode"),
    (Word::Compat, compat::DIR_INDEX, "dir_index"),
    (Word::Compat, compat::LAZY_BG, "lazy_bg"),
    (Word::Compat, compat::EXCLUDE_BITMAP, "snapshot_bitmap"),
    (Word::Compat, compat::SPARSE_SUPER2, "sparse_super2"),
    (Word::Compat, compat::FAST_COMMIT, "fast_commit"),
    (Word::Compat, compat::STABLE_INODES, "stable_inodes"),
    (Word::Compat, compat::ORPHAN_FILE, "orphan_file"),
    (Word::Incompat, incompat::COMPRESSION, "compression"),
    (Word::Incompat, incompat::FILETYPE, "filetype"),
    (Word::Incompat, incompat::RECOVER, "needs_recovery"),
    (Word::Incompat, incompat::JOURNAL_DEV, "journal_dev"),
    (Word::Incompat, incompat::META_BG, "meta_bg"),
    (Word::Incompat, incompat::EXTENTS, "extent"),
    (Word::Incompat, incompat::BIT64, "64bit"),
    (Word::Incompat, incompat::MMP, "mmp"),
    (Word::Incompat, incompat::FLEX_BG, "flex_bg"),
    (Word::Incompat, incompat::EA_INODE, "ea_inode"),
    (Word::Incompat, incompat::DIRDATA, "dirdata"),
    (Word::Incompat, incompat::CSUM_SEED, "metadata_csum_seed"),
    (Word::Incompat, incompat::LARGEDIR, "large_dir"),
    (Word::Incompat, incompat::INLINE_DATA, "inline_data"),
    (Word::Incompat, incompat::ENCRYPT, "encrypt"),
    (Word::Incompat, incompat::CASEFOLD, "casefold"),
    (Word::RoCompat, ro_compat::SPARSE_SUPER, "sparse_super"),
    (Word::RoCompat, ro_compat::LARGE_FILE, "large_file"),
    (Word::RoCompat, ro_compat::BTREE_DIR, "btree_dir"),
    (Word::RoCompat, ro_compat::HUGE_FILE, "huge_file"),
    (Word::RoCompat, ro_compat::GDT_CSUM, "uninit_bg"),
    (Word::RoCompat, ro_compat::DIR_NLINK, "dir_nlink"),
    (Word::RoCompat, ro_compat::EXTRA_ISIZE, "extra_isize"),
    (Word::RoCompat, ro_compat::HAS_SNAPSHOT, "snapshot"),
    (Word::RoCompat, ro_compat::QUOTA, "quota"),
    (Word::RoCompat, ro_compat::BIGALLOC, "bigalloc"),
    (Word::RoCompat, ro_compat::METADATA_CSUM, "metadata_csum"),
    (Word::RoCompat, ro_compat::REPLICA, "replica"),
    (Word::RoCompat, ro_compat::READONLY, "read-only"),
    (Word::RoCompat, ro_compat::PROJECT, "project"),
    (Word::RoCompat, ro_compat::SHARED_BLOCKS, "shared_blocks"),
    (Word::RoCompat, ro_compat::VERITY, "verity"),
    (Word::RoCompat, ro_compat::ORPHAN_PRESENT, "orphan_present"),
];

/// The name of one feature bit, or e2p's `FEATURE_X<bit>` spelling for an
/// unknown one.
pub fn name(word: Word, bit: u32) -> String {
    if let Some((_, _, n)) = NAMES.iter().find(|(w, b, _)| *w == word && *b == bit) {
        return (*n).to_string();
    }
    let prefix = match word {
        Word::Compat => 'C',
        Word::Incompat => 'I',
        Word::RoCompat => 'R',
    };
    format!("FEATURE_{prefix}{}", bit.trailing_zeros())
}

/// The bit a feature name stands for (e2p's names, plus its aliases
/// `extents` and `gdt_csum`, and its `FEATURE_C12` spelling).
pub fn by_name(name: &str) -> Option<(Word, u32)> {
    let lower = name.to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "extents" => "extent",
        "gdt_csum" => "uninit_bg",
        other => other,
    };
    if let Some((w, b, _)) = NAMES.iter().find(|(_, _, n)| *n == canonical) {
        return Some((*w, *b));
    }
    let rest = canonical.strip_prefix("feature_")?;
    let mut chars = rest.chars();
    let word = match chars.next()? {
        'c' => Word::Compat,
        'i' => Word::Incompat,
        'r' => Word::RoCompat,
        _ => return None,
    };
    let bit: u32 = chars.as_str().parse().ok()?;
    (bit < 32).then_some((word, 1u32 << bit))
}

/// Applies an edit like mke2fs's `-O` (e2p's `edit_feature`) to the three
/// words: names separated by commas or blanks, `^name` or `-name` clears,
/// `name` or `+name` sets, `none`/`clear` clears everything. Returns the
/// first name it does not know.
pub fn edit(words: &mut [u32; 3], spec: &str) -> Result<(), String> {
    for tok in spec
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
    {
        if tok.eq_ignore_ascii_case("none") || tok.eq_ignore_ascii_case("clear") {
            *words = [0; 3];
            continue;
        }
        let (set, name) = match tok.as_bytes()[0] {
            b'^' | b'-' => (false, &tok[1..]),
            b'+' => (true, &tok[1..]),
            _ => (true, tok),
        };
        let (word, bit) = by_name(name).ok_or_else(|| name.to_string())?;
        let w = &mut words[match word {
            Word::Compat => 0,
            Word::Incompat => 1,
            Word::RoCompat => 2,
        }];
        if set {
            *w |= bit;
        } else {
            *w &= !bit;
        }
    }
    Ok(())
}

/// The names of every bit set in `bits` of `word`, lowest bit first.
pub fn names(word: Word, bits: u32) -> Vec<String> {
    (0..32)
        .map(|i| 1u32 << i)
        .filter(|b| bits & b != 0)
        .map(|b| name(word, b))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_of_debian_defaults() {
        assert_eq!(
            names(Word::Compat, 0x3c).join(" "),
            "has_journal ext_attr resize_inode dir_index"
        );
        assert_eq!(
            names(Word::Incompat, 0x2c2).join(" "),
            "filetype extent 64bit flex_bg"
        );
        assert_eq!(
            names(Word::RoCompat, 0x46b).join(" "),
            "sparse_super large_file huge_file dir_nlink extra_isize metadata_csum"
        );
        assert_eq!(name(Word::Incompat, 1 << 30), "FEATURE_I30");
    }
}
