package memory

import (
	"testing"

	"gmsa/internal/store"
	"gmsa/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return New() })
}
