/* preflight-mem.h - the helper server's memory, laid out for cheap
 * children (notes in preflight-mem.c). */
#ifndef COPEES_PREFLIGHT_MEM_H
#define COPEES_PREFLIGHT_MEM_H

#include <stdio.h>

/* First thing in the server: malloc keeps its free memory and grows the
 * heap a megabyte at a time. */
void pfm_malloc_setup(void);
/* What a fresh anonymous page's first write costs here, in ns (the best
 * of three rounds of 128 pages), -1 when it cannot tell. */
long pfm_fault_ns(void);
/* Above this, the fault-saving layout pays (notes in preflight-mem.c). */
#define PFM_DEAR_FAULT_NS 4000
/* Once, before the first child: leave no free chunk for a child to take
 * but the top of the heap, and return the top to the kernel.  Returns the
 * free bytes left outside the top, or -1 where it cannot tell (not glibc,
 * ASan). */
long pfm_heap_settle(void);
/* Last, after the server's filter, when the server allocates no more:
 * make a child's fresh heap begin at a huge-page boundary in a block
 * marked MADV_HUGEPAGE.  Returns the block, or NULL when not done (THP
 * off, not glibc, ASan, a heap that does not line up). */
void *pfm_heap_huge(void);
/* Before the filter: give each read-only private file mapping that
 * children inherit one anonymous page, so that fork copies its page-table
 * entries.  Returns how many mappings were given one (0 when the kernel
 * refuses), -1 where not done (not glibc, ASan). */
int pfm_inherit_text(void);
/* For preflight --lean-check: whether huge (pfm_heap_huge's result) is
 * set, then what a forked child finds: how much of poppler's code is
 * resident before it runs any, how many learned pages are its own after
 * pfm_child_prefault, and how much of 256 KiB it allocates lies in huge
 * pages.  Lines on out; 0, or -1 when the child failed. */
int pfm_report(FILE *out, const void *huge);
/* Last in the server (it forks): a learner child runs work (a whole
 * check of the built-in document) and reports which of the server's
 * pages it wrote.  Returns how many pages (0: none learned, the learner
 * failed or hung; -1 where not done). */
long pfm_learn_writes(int (*work)(void));
/* First thing in a child: copy those pages at once (MADV_POPULATE_WRITE)
 * instead of one copy-on-write fault each. */
void pfm_child_prefault(void);
/* For --lean-check, in a forked child: pfm_child_prefault(), then how
 * many of the learned pages are now the child's own (-1: cannot tell). */
long pfm_prefault_check(void);

#endif
