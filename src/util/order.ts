// Comparators for Array.prototype.sort, whose default compares elements as strings
// ([10, 9, 2].sort() gives [10, 2, 9]); the linter requires one of these at every sort.

/** Ascending numbers. */
export const byNumber = (a: number, b: number): number => a - b;

/** Strings by UTF-16 code unit, the order of the default sort and of Python's sorted() on ASCII names. */
export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
