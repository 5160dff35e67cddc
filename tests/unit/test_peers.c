/* Per-address slots of the session host (src/host/peers.c):
 * --max-connections-per-ip counts, refusals naming the address, detached
 * sessions waiting, and slots given back. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "check.h"
#include "host/peers.h"

static void test_peers(void)
{
    struct peers p;
    char why[200];
    int counted;
    peers_init(&p, 2);
    ASSERT_OK(peers_acquire(&p, "10.0.0.1", &counted, why, sizeof why));
    ASSERT(counted);
    ASSERT_OK(peers_acquire(&p, "10.0.0.1", &counted, why, sizeof why));
    ASSERT_EQ(peers_acquire(&p, "10.0.0.1", &counted, why, sizeof why), HARK_E_LIMIT);
    ASSERT(!counted);
    ASSERT(strstr(why, "10.0.0.1") && strstr(why, "max 2"));
    /* another address has its own slots */
    ASSERT_OK(peers_acquire(&p, "::1", &counted, why, sizeof why));
    ASSERT(counted);
    /* a detached session of the address waits for a resume */
    ASSERT(!peers_waiting(&p, "10.0.0.1"));
    peers_wait(&p, "10.0.0.1", +1);
    ASSERT(peers_waiting(&p, "10.0.0.1"));
    ASSERT(!peers_waiting(&p, "::1"));
    peers_wait(&p, "10.0.0.1", -1);
    ASSERT(!peers_waiting(&p, "10.0.0.1"));
    /* a slot given back can be taken again; the last one forgets the address */
    peers_release(&p, "10.0.0.1");
    ASSERT_OK(peers_acquire(&p, "10.0.0.1", &counted, why, sizeof why));
    peers_release(&p, "10.0.0.1");
    peers_release(&p, "10.0.0.1");
    ASSERT_EQ(p.n, 1);
    peers_release(&p, "::1");
    ASSERT_EQ(p.n, 0);
    peers_release(&p, "nobody"); /* not counted: nothing happens */
    /* many addresses: the table grows */
    char addr[PEERS_ADDR_MAX];
    for (int i = 0; i < 100; i++) {
        snprintf(addr, sizeof addr, "192.168.0.%d", i);
        ASSERT_OK(peers_acquire(&p, addr, &counted, why, sizeof why));
        ASSERT(counted);
    }
    ASSERT_EQ(p.n, 100);
    peers_deinit(&p);

    /* no limit, or no address: nothing is counted */
    peers_init(&p, 0);
    for (int i = 0; i < 5; i++) {
        ASSERT_OK(peers_acquire(&p, "10.0.0.1", &counted, why, sizeof why));
        ASSERT(!counted);
    }
    peers_deinit(&p);
    peers_init(&p, 1);
    ASSERT_OK(peers_acquire(&p, "", &counted, why, sizeof why));
    ASSERT(!counted);
    peers_deinit(&p);
}

int main(void)
{
    RUN(test_peers);
    CHECK_NO_LEAKS();
    return 0;
}
