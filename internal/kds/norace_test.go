//go:build !race

package kds

const raceEnabled = false
