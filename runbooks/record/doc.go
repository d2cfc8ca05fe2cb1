// Package record is the evidence a run leaves behind: the Evidence record the
// workflow returns (and can rebuild from its history), how it reads — the
// Markdown, the timeline picture (SVG) and the HTML page — the digests its
// seal lists (FieldDigests, EditedFields), and the comparison of a past run
// with its re-enactment (Compare). Storing, signing and chaining records is
// the evidence.store activity's (activities/evidence).
package record
