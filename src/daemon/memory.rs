//! Keeping an idle daemon small: glibc's allocator keeps freed memory for
//! reuse, so without help an idle daemon holds the peak of its last pass.
//! The crate's only `unsafe` code: glibc has no safe interface for this.

/// Makes every thread allocate from the one main arena. Renders run on
/// render threads, and glibc would give each its own arena, whose freed
/// pages stay with the process between passes (a megabyte at 10,000 keys);
/// a daemon's few render threads gain nothing from arenas of their own.
#[allow(unsafe_code)]
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and only changes glibc's own
    // settings, under glibc's own lock; it applies to arenas created later.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Keeps every block of 128 KiB or more out of the heap, in memory mapped
/// for it alone. glibc otherwise raises that threshold each time such a
/// block is freed; a buffer that keeps growing (the pair list a read fills,
/// a render's output) is then copied within the heap at each doubling, and
/// the old copies stay resident: up to 4 MiB more peak memory for a
/// 100,000-key read, and a different amount from run to run. A mapped block
/// grows in place (mremap) and goes back to the system when freed.
#[allow(unsafe_code)]
pub fn map_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and only changes glibc's own
    // settings, under glibc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

/// Hands the memory a pass freed (the read's response, the render's buffers)
/// back to the system, so an idle daemon holds what it keeps and little more:
/// the data kept between passes sits among freed memory, so the heap cannot
/// simply shrink from its top.
#[allow(unsafe_code)]
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's own free
    // lists, under glibc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
