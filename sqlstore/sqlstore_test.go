package sqlstore_test

import (
	"testing"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/storetest"
)

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) apitoken.Store { return newStore(t, d) })
		})
	}
}
