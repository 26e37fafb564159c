// Package readme holds the test that runs every shell command of the
// repository's README.md, in order, on a fresh clone: the newcomer's path is
// tested as written. It has no code of its own; see readme_test.go for the
// HTML comments README.md uses to mark blocks that run in the background, run
// beside one, or cannot run in a test.
package readme
