/* test_rconn.c - redis:// URLs as users write them, and the one-line errors they get. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "audience.h"
#include "check.h"
#include "rconn.h"
#include "tls.h"
#include "util.h"

static int parse(const char *url, struct rconn_url *u, char *err, size_t errlen)
{
    return rconn_parse_url(url, u, err, errlen);
}

/* A listening socket on 127.0.0.1 and a port of the kernel's choosing (*port), with a
 * receive buffer of rcvbuf bytes where rcvbuf > 0; who names the stand-in if it fails. */
static int loopback_listener(int *port, int rcvbuf, const char *who)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int ls = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls >= 0 && rcvbuf > 0) setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &n) != 0) {
        perror(who);
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return ls;
}

/* A Redis stand-in on 127.0.0.1, in a child: it answers the PING of one connection, then
 * reads the next command and closes the connection (then_close) or answers nothing for 3 s
 * (20 s where then_close is negative).
 * Returns the child's pid, its port in *port. */
static pid_t fake_redis(int *port, int then_close)
{
    /* a window that stays small: a send it does not read stalls at once */
    int ls = loopback_listener(port, 4096, "fake_redis");
    pid_t pid = fork();

    if (pid == 0) {
        char buf[512];
        int c = accept(ls, NULL, NULL);
        if (c >= 0 && read(c, buf, sizeof buf) > 0 && write(c, "+PONG\r\n", 7) == 7 &&
            read(c, buf, sizeof buf) > 0 && then_close <= 0)
            sleep(then_close < 0 ? 20 : 3);
        _exit(0);
    }
    close(ls);
    return pid;
}

/* An IPv6 address connects (tcp_connect asks for IPv4 first, as hiredis does, and for IPv6
 * where a name has no IPv4 address): a stand-in on ::1 answers the connect's PING. */
static void test_connect_ipv6(void)
{
    struct sockaddr_in6 a;
    socklen_t n = sizeof a;
    struct rconn_url u;
    struct rconn r;
    char url[64], err[256];
    int ls = socket(AF_INET6, SOCK_STREAM, 0);
    pid_t pid;

    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    REQUIRE(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 1) == 0);
    REQUIRE(getsockname(ls, (struct sockaddr *)&a, &n) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char buf[512];
        int c = accept(ls, NULL, NULL);
        if (c >= 0 && read(c, buf, sizeof buf) > 0 && write(c, "+PONG\r\n", 7) == 7)
            while (read(c, buf, sizeof buf) > 0) continue;
        _exit(0);
    }
    close(ls);
    snprintf(url, sizeof url, "redis://[::1]:%d", ntohs(a.sin6_port));
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 5.0);
    CHECK_EQ(rconn_connect(&r), 0);
    rconn_close(&r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* tls_lookup's stand-in: it counts the names asked, waits while lookup_held (10 s at most),
 * and lookup_delay_ms more, then answers 127.0.0.1, or EAI_NONAME for a name starting "none".
 * lookup_ended: it has returned. */
static int lookups, lookup_held, lookup_ended, lookup_delay_ms;

static int fake_lookup(const char *host, const char *svc, struct addrinfo **res)
{
    struct addrinfo hints;
    int rc;

    __atomic_add_fetch(&lookups, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 1000 && __atomic_load_n(&lookup_held, __ATOMIC_SEQ_CST); i++)
        usleep(10 * 1000);
    usleep((useconds_t)__atomic_load_n(&lookup_delay_ms, __ATOMIC_SEQ_CST) * 1000);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    rc = strncmp(host, "none", 4) == 0 ? EAI_NONAME : getaddrinfo("127.0.0.1", svc, &hints, res);
    __atomic_store_n(&lookup_ended, 1, __ATOMIC_SEQ_CST);
    return rc;
}

/* A connect of test_resolve_deadline's, on a thread of its own. */
struct shared_connect {
    pthread_t tid;
    int port, fd;
    char err[256];
};

static void *connect_shared(void *arg)
{
    struct shared_connect *s = arg;

    s->fd = tls_tcp_connect("cq-shared.test", s->port, 5.0, s->err, sizeof s->err);
    return NULL;
}

/* A name's resolution keeps to the connect's deadline (a DNS server that does not answer
 * held getaddrinfo for its own time-outs, 10-30 s): a lookup still going then is left to its
 * thread, which frees what it holds when it returns (ASan's leak check at the exit: the
 * case waits for that), and the message says so. An address takes no lookup thread; a name
 * looked up in time connects; the resolver's own error is said as it says it.
 * test_resolve.sh does it with a real silent DNS server. */
static void test_resolve_deadline(void)
{
    char err[256];
    int port, ls = loopback_listener(&port, 0, "resolve"), fd, i, n;
    long long t0, took;
    struct shared_connect sc[2];

    tls_lookup = fake_lookup;
    tls_lookup_min = 0; /* the connect's time-out alone bounds a lookup, until the last case */
    fd = tls_tcp_connect("127.0.0.1", port, 1.0, err, sizeof err);
    CHECK(fd >= 0);
    CHECK_EQ(__atomic_load_n(&lookups, __ATOMIC_SEQ_CST), 0); /* an address: no thread */
    if (fd >= 0) close(fd);

    fd = tls_tcp_connect("cq-fast.test", port, 1.0, err, sizeof err);
    CHECK(fd >= 0);
    CHECK_EQ(__atomic_load_n(&lookups, __ATOMIC_SEQ_CST), 1);
    if (fd >= 0) close(fd);

    CHECK_EQ(tls_tcp_connect("none.test", port, 1.0, err, sizeof err), -1);
    CHECK_STREQ(err, "Name or service not known");

    /* A lookup held (up to 10 s) against a deadline of 0.3 s: the connect gives up then. */
    __atomic_store_n(&lookup_held, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&lookup_ended, 0, __ATOMIC_SEQ_CST);
    t0 = time_mono_ms();
    fd = tls_tcp_connect("cq-slow.test", port, 0.3, err, sizeof err);
    took = time_mono_ms() - t0;
    CHECK_EQ(fd, -1);
    CHECK_STREQ(err,
                "could not resolve cq-slow.test within 0.3 s (the name service did not "
                "answer: check the nameservers of /etc/resolv.conf, and the hosts line of "
                "/etc/nsswitch.conf)");
    CHECK(took >= 290);
    CHECK(took < 2000); /* the lookup's end not waited for */
    CHECK_EQ(__atomic_load_n(&lookup_ended, __ATOMIC_SEQ_CST), 0);
    if (fd >= 0) close(fd);
    /* A connect to the same name while that lookup still runs (a worker reconnecting) waits
     * for it, to the same end, and starts none of its own: one thread for the name, where
     * each try left one more until the resolver gave up (h34's review: 4 -> 13 threads). */
    n = __atomic_load_n(&lookups, __ATOMIC_SEQ_CST);
    CHECK_EQ(tls_tcp_connect("cq-slow.test", port, 0.3, err, sizeof err), -1);
    CHECK_STREQ(err,
                "could not resolve cq-slow.test within 0.3 s (the name service did not "
                "answer: check the nameservers of /etc/resolv.conf, and the hosts line of "
                "/etc/nsswitch.conf)");
    CHECK_EQ(__atomic_load_n(&lookups, __ATOMIC_SEQ_CST), n);
    /* The thread left behind ends and frees its request (ASan, valgrind: no leak). */
    __atomic_store_n(&lookup_held, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < 200 && !__atomic_load_n(&lookup_ended, __ATOMIC_SEQ_CST); i++)
        usleep(50 * 1000);
    CHECK_EQ(__atomic_load_n(&lookup_ended, __ATOMIC_SEQ_CST), 1);
    usleep(200 * 1000);
    close(ls);
    /* Once it has ended, the name is looked up afresh, and connects (a listener of its own:
     * the first one's backlog of 1 is full). */
    ls = loopback_listener(&port, 0, "resolve again");
    fd = tls_tcp_connect("cq-slow.test", port, 1.0, err, sizeof err);
    if (fd < 0) fprintf(stderr, "cq-slow.test: %s\n", err);
    CHECK(fd >= 0);
    CHECK_EQ(__atomic_load_n(&lookups, __ATOMIC_SEQ_CST), n + 1);
    if (fd >= 0) close(fd);
    close(ls);
    /* Two connects to a name at once (a worker's control connection and watchers), the
     * lookup answering within their deadline: both take its addresses, where the second,
     * which waited for the first's lookup, then looked the name up again, its answer thrown
     * away: with a DNS server that takes most of the time-out, past its deadline. */
    ls = loopback_listener(&port, 0, "resolve shared");
    __atomic_store_n(&lookup_held, 1, __ATOMIC_SEQ_CST);
    n = __atomic_load_n(&lookups, __ATOMIC_SEQ_CST);
    for (i = 0; i < 2; i++) {
        sc[i].port = port;
        sc[i].fd = -1;
        sc[i].err[0] = '\0';
        REQUIRE(pthread_create(&sc[i].tid, NULL, connect_shared, &sc[i]) == 0);
        /* the first's lookup under way before the second starts */
        for (int k = 0; k < 200 && __atomic_load_n(&lookups, __ATOMIC_SEQ_CST) == n; k++)
            usleep(10 * 1000);
    }
    usleep(500 * 1000); /* the second waiting for the first's lookup */
    __atomic_store_n(&lookup_held, 0, __ATOMIC_SEQ_CST);
    for (i = 0; i < 2; i++) {
        pthread_join(sc[i].tid, NULL);
        if (sc[i].fd < 0) fprintf(stderr, "cq-shared.test: %s\n", sc[i].err);
        CHECK(sc[i].fd >= 0);
        if (sc[i].fd >= 0) close(sc[i].fd);
    }
    CHECK_EQ(__atomic_load_n(&lookups, __ATOMIC_SEQ_CST), n + 1);
    close(ls);
    /* Where the connect's time-out is shorter, a lookup has tls_lookup_min (10 s; 1 s here):
     * a name whose first nameserver does not answer (the resolver asks the next after its
     * 5 s) connects, where it failed at the connect's 5 s; the connect has its time-out from
     * the answer. */
    tls_lookup_min = 1.0;
    __atomic_store_n(&lookup_delay_ms, 600, __ATOMIC_SEQ_CST);
    ls = loopback_listener(&port, 0, "resolve late");
    t0 = time_mono_ms();
    fd = tls_tcp_connect("cq-late.test", port, 0.3, err, sizeof err);
    took = time_mono_ms() - t0;
    if (fd < 0) fprintf(stderr, "cq-late.test: %s\n", err);
    CHECK(fd >= 0);
    CHECK(took >= 590);
    if (fd >= 0) close(fd);
    close(ls);
    __atomic_store_n(&lookup_delay_ms, 0, __ATOMIC_SEQ_CST);
    tls_lookup_min = 10.0;
}

/* Whether errstr is a lost connection's (rconn.lost), whose line says that the connection is
 * opened again, as cworker's "lost redis: ..." takes it: not a connection that cannot be made,
 * nor a time-out. */
static void test_lost(void)
{
    struct rconn_url u;
    struct rconn r;
    char url[64], err[256], want[300];
    int port;
    pid_t pid = fake_redis(&port, 1);

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    REQUIRE(rconn_connect(&r) == 0);
    CHECK(rconn_commandf(&r, "GET k") == NULL);
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: Server closed the connection; the connection was lost (Redis "
             "stopped, restarted or closed it); it is opened again at the next command",
             port);
    CHECK_STREQ(r.errstr, want);
    CHECK_EQ(r.lost, 1);
    waitpid(pid, NULL, 0);
    /* The next command connects again, where nothing listens now. */
    CHECK(rconn_commandf(&r, "GET k") == NULL);
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: Connection refused; is redis-server running there? Start it, "
             "or point the URL at yours",
             port);
    CHECK_STREQ(r.errstr, want);
    CHECK_EQ(r.lost, 0);
    {
        /* Commands that could not be appended are not sent with the next ones. */
        struct rconn_buf b = {0};
        rconn_buf_array(&b, 1);
        rconn_buf_str(&b, "PING");
        CHECK_EQ(rconn_append_buf(&r, &b), -1);
        CHECK_EQ(b.len, 0);
        rconn_buf_free(&b);
    }
    rconn_close(&r);

    pid = fake_redis(&port, 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    r.lost = 1;
    REQUIRE(rconn_connect(&r) == 0);
    CHECK(rconn_commandf(&r, "GET k") == NULL);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: no reply within 1 s", port);
    CHECK_STREQ(r.errstr, want);
    CHECK_EQ(r.lost, 0);
    rconn_close(&r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    /* A command that Redis stops reading (32 MiB, more than the sockets' buffers hold): its
     * send stalls past the time-out, which is said as such, not as a reply that did not
     * come (h25's review, scratch/tls_hang.c). */
    pid = fake_redis(&port, -1);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    REQUIRE(rconn_connect(&r) == 0);
    {
        size_t big = 32u << 20;
        char *v = xmalloc(big);
        const char *argv[3] = {"SET", "k", v};
        size_t lens[3] = {3, 1, big};
        memset(v, 'x', big);
        CHECK(rconn_command(&r, 3, argv, lens) == NULL);
        free(v);
    }
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: could not send within 1 s (Redis reads nothing)", port);
    CHECK_STREQ(r.errstr, want);
    CHECK_EQ(r.lost, 0);
    rconn_close(&r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* A password with a raw '/', '?', '@' or ':' (OPERATIONS.md: only a '%' needs encoding):
 * the credentials end at the last '@' (a socket's at its first "@/"), so that each is parsed
 * whole, and every message about the URL shows it as ***, however the rest is wrong. */
static void test_password_chars(void)
{
    static const struct {
        const char *ok, *bad, *shown, *user, *pass;
    } c[] = {
        {"redis://:s3cr/Xq9@127.0.0.1:6379", "redis://:s3cr/Xq9@127.0.0.1:99999",
         "'redis://:***@127.0.0.1:99999'", "", "s3cr/Xq9"},
        {"redis://:s3cr?Xq9@127.0.0.1:6379/2", "redis://:s3cr?Xq9@127.0.0.1:6379/x",
         "'redis://:***@127.0.0.1:6379/x'", "", "s3cr?Xq9"},
        {"redis://app:s3cr@Xq9@h:1/0?replicas=1", "redis://app:s3cr@Xq9@h:1/0?replicas=x",
         "'redis://app:***@h:1/0?replicas=x'", "app", "s3cr@Xq9"},
        {"redis://app:s3cr:Xq9@h", "redis://app:s3cr:Xq9@h:", "'redis://app:***@h:'", "app",
         "s3cr:Xq9"},
        {"redis://:s3cr/?@:Xq9@h", "redis://:s3cr/?@:Xq9@h/x", "'redis://:***@h/x'", "",
         "s3cr/?@:Xq9"},
        {"redis://s3cr/?@Xq9@h", "redis://s3cr/?@Xq9@h/x", "'redis://***@h/x'", "", "s3cr/?@Xq9"},
        {"rediss://app:s3cr/?Xq9@h:6380/1", "rediss://app:s3cr/?Xq9@h:0/1",
         "'rediss://app:***@h:0/1'", "app", "s3cr/?Xq9"},
        {"unix://app:s3cr/?@Xq9@/run/redis.sock?db=1", "unix://app:s3cr/?@Xq9@/run/redis.sock?x",
         "'unix://app:***@/run/redis.sock?x'", "app", "s3cr/?@Xq9"},
        {"unix://:s3cr/Xq9@/run/redis.sock", "unix://:s3cr/Xq9@run/redis.sock",
         "'unix://:***@run/redis.sock'", "", "s3cr/Xq9"},
        {"redis+sentinel://:s3cr/?Xq9@s1,s2:26380/m/3?replicas=1",
         "redis+sentinel://:s3cr/?Xq9@s1,s2:x/m", "'redis+sentinel://:***@s1,s2:x/m'", "",
         "s3cr/?Xq9"},
        {"redis+sentinel://app:s3cr/Xq9@s1/m", "redis+sentinel://app:s3cr/Xq9@s1",
         "'redis+sentinel://app:***@s1'", "app", "s3cr/Xq9"},
    };
    struct rconn_url u;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        CHECK_EQ(parse(c[i].ok, &u, err, sizeof err), 0);
        CHECK_STREQ(u.user, c[i].user);
        CHECK_STREQ(u.pass, c[i].pass);
        CHECK_EQ(parse(c[i].bad, &u, err, sizeof err), -1);
        CHECK_HAS(err, c[i].shown);
        CHECK(strstr(err, "s3cr") == NULL && strstr(err, "Xq9") == NULL);
    }
    /* ...and the rest of the URL where it was. */
    CHECK_EQ(parse(c[1].ok, &u, err, sizeof err), 0);
    CHECK(strcmp(u.host, "127.0.0.1") == 0 && u.port == 6379 && u.db == 2);
    CHECK_EQ(parse(c[2].ok, &u, err, sizeof err), 0);
    CHECK(strcmp(u.host, "h") == 0 && u.port == 1 && u.db == 0 && u.wait_replicas == 1);
    CHECK_EQ(parse(c[6].ok, &u, err, sizeof err), 0);
    CHECK(u.tls == 1 && strcmp(u.host, "h") == 0 && u.port == 6380 && u.db == 1);
    CHECK_EQ(parse(c[7].ok, &u, err, sizeof err), 0);
    CHECK(strcmp(u.unix_path, "/run/redis.sock") == 0 && u.db == 1);
    CHECK_EQ(parse(c[9].ok, &u, err, sizeof err), 0);
    CHECK(u.nsentinels == 2 && u.sentinels[1].port == 26380 && u.db == 3);
    CHECK(strcmp(u.master, "m") == 0 && u.wait_replicas == 1);
    /* Still %-decoded. */
    CHECK_EQ(parse("redis://app:a%2Fb/c%3F@h", &u, err, sizeof err), 0);
    CHECK_STREQ(u.pass, "a/b/c?");
    /* An '@' after the authority is read as a password's end only where the URL does not
     * parse without credentials (h30's review of 0a7702a, which read the last '@' always): a
     * master's name may hold one ('sentinel monitor my@master ...' is taken)... */
    CHECK_EQ(parse("redis+sentinel://127.0.0.1:26390/my@master", &u, err, sizeof err), 0);
    CHECK(u.pass[0] == '\0' && u.nsentinels == 1 && u.sentinels[0].port == 26390);
    CHECK_STREQ(u.master, "my@master");
    CHECK_EQ(parse("redis+sentinel://s1,s2/m@x/3", &u, err, sizeof err), 0);
    CHECK(u.pass[0] == '\0' && u.nsentinels == 2 && u.db == 3);
    CHECK_STREQ(u.master, "m@x");
    /* ...and an authority that holds an '@' ends its credentials there, whatever follows: a
     * bad query's '@' never sends the password to the host after it. */
    CHECK_EQ(parse("redis://:secret@127.0.0.1:6000/0?note=@127.0.0.2:7000", &u, err, sizeof err),
             -1);
    CHECK_HAS(err, "the only option is ?replicas=N");
    CHECK(strstr(err, "secret") == NULL);
    /* A late '@' with no host after it is no end of credentials. */
    CHECK_EQ(parse("redis://h:6379?replicas=1@", &u, err, sizeof err), -1);
    CHECK_HAS(err, "no host after the credentials' '@'");
    CHECK(strstr(err, "6379?replicas") == NULL);
}

/* A signal during a TCP connect (h25's review, scratch/eintr.c): a program's handler, set
 * without SA_RESTART (SIGALRM 300 ms in), does not end the connect, which waits on within its
 * time-out. The listener's accept queue is full (backlog 0, one connection queued and not
 * accepted), so that its SYNs are dropped and the connect is pending when the signal comes.
 * With accept_after_ms, a child accepts the queued connection then, the retried SYN (1 s on)
 * gets in, and the child answers the connect's PING: the connect succeeds. Without, nobody
 * accepts: it fails at its time-out, as a connect that timed out. */
static void on_alarm(int sig)
{
    (void)sig;
}

static void test_connect_signal(int accept_after_ms)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    struct sigaction sa, old;
    struct itimerval it = {{0, 0}, {0, 300000}};
    struct rconn_url u;
    struct rconn r;
    char url[64], err[256];
    int ls = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0), rc;
    long long t0, took;
    pid_t pid = -1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(ls >= 0 && filler >= 0);
    REQUIRE(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 0) == 0);
    REQUIRE(getsockname(ls, (struct sockaddr *)&a, &n) == 0);
    REQUIRE(connect(filler, (struct sockaddr *)&a, sizeof a) == 0); /* the queue is full now */
    if (accept_after_ms > 0) {
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            char buf[512];
            int c;
            sleep_ms(accept_after_ms);
            close(accept(ls, NULL, NULL)); /* the filler */
            c = accept(ls, NULL, NULL);
            if (c >= 0 && read(c, buf, sizeof buf) > 0 && write(c, "+PONG\r\n", 7) == 7)
                while (read(c, buf, sizeof buf) > 0) continue;
            _exit(0);
        }
    }
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, accept_after_ms > 0 ? 5.0 : 2.0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, &old);
    setitimer(ITIMER_REAL, &it, NULL);
    t0 = time_mono_ms();
    rc = rconn_connect(&r);
    took = time_mono_ms() - t0;
    sigaction(SIGALRM, &old, NULL);
    if (accept_after_ms > 0) {
        CHECK_EQ(rc, 0);
        CHECK(r.errstr[0] == '\0');
        CHECK(took >= 300); /* after the signal, not before it */
        rconn_close(&r);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    } else {
        CHECK_EQ(rc, -1);
        CHECK(strstr(r.errstr, "Interrupted") == NULL);
        CHECK_HAS(r.errstr, "timed out");
        CHECK(took >= 1500); /* its 2 s, where the signal ended it at 0.3 s */
    }
    close(filler);
    close(ls);
}

/* TCP keep-alive, as hiredis 0.14's redisKeepAlive sets it (15 s idle, a probe every 5 s, 3
 * of them), on a redis:// connection's socket and on the one tls_tcp_connect makes, which is
 * under every rediss:// session too (h25's review: those had only SO_KEEPALIVE, the system's
 * 2 hours idle, where a peer gone without a word held a worker's connection that long). */
static void check_keepalive(int fd)
{
    int v[4] = {0, 0, 0, 0};
    socklen_t n = sizeof v[0];

    CHECK(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v[0], &n) == 0 && v[0] == 1);
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v[1], &n) == 0);
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v[2], &n) == 0);
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v[3], &n) == 0);
    CHECK_EQ(v[1], 15);
    CHECK_EQ(v[2], 5);
    CHECK_EQ(v[3], 3);
}

static void test_keepalive(void)
{
    struct rconn_url u;
    struct rconn r;
    char url[64], err[256];
    int port, fd;
    pid_t pid = fake_redis(&port, 0);

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    REQUIRE(rconn_connect(&r) == 0);
    check_keepalive(r.ctx->fd);
    rconn_close(&r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    pid = fake_redis(&port, 0);
    fd = tls_tcp_connect("127.0.0.1", port, 1.0, err, sizeof err);
    CHECK(fd >= 0);
    if (fd >= 0) {
        check_keepalive(fd);
        close(fd);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* A sentinel stand-in on 127.0.0.1, in a child: to one connection's first command it
 * answers reply (raw RESP), then reads until the connection closes. Its pid; *port. */
static pid_t fake_sentinel(int *port, const char *reply)
{
    int ls = loopback_listener(port, 0, "fake_sentinel");
    pid_t pid = fork();

    if (pid == 0) {
        char buf[512];
        int c = accept(ls, NULL, NULL);
        if (c >= 0 && read(c, buf, sizeof buf) > 0 &&
            write(c, reply, strlen(reply)) == (ssize_t)strlen(reply))
            while (read(c, buf, sizeof buf) > 0) continue;
        _exit(0);
    }
    close(ls);
    return pid;
}

/* A sentinel that answers something other than [host, port] is said to have answered it,
 * not "no answer" (h25's review). */
static void test_sentinel_odd_answers(void)
{
    static const char *const replies[3] = {"+OK\r\n", "*2\r\n$9\r\n127.0.0.1\r\n$3\r\nabc\r\n",
                                           "*1\r\n$1\r\nx\r\n"};
    struct rconn_url u;
    struct rconn r;
    char url[200], err[256], want[512];
    int port[3], i;
    pid_t pid[3];

    for (i = 0; i < 3; i++) pid[i] = fake_sentinel(&port[i], replies[i]);
    snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/m", port[0],
             port[1], port[2]);
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 2.0);
    CHECK_EQ(rconn_connect(&r), -1);
    snprintf(want, sizeof want,
             "redis sentinels of m: none gave its primary (127.0.0.1:%d: answered 'OK'; "
             "127.0.0.1:%d: answered host '127.0.0.1' port 'abc', not a port or host; "
             "127.0.0.1:%d: answered an array of 1, not [host, port]); check that the "
             "sentinels run and monitor m",
             port[0], port[1], port[2]);
    CHECK_STREQ(r.errstr, want);
    rconn_close(&r);
    for (i = 0; i < 3; i++) {
        kill(pid[i], SIGKILL);
        waitpid(pid[i], NULL, 0);
    }
}

/* Eight sentinels whose answers do not fit in one line (errstr's 512 bytes): as many as fit
 * are said whole, the others counted ("and 4 more"), and the line keeps its advice at the end,
 * where a 400-byte summary cut the fourth answer in two and said nothing of the others. */
static void test_sentinel_many_answers(void)
{
    enum { N = RCONN_SENTINELS_MAX };
    struct rconn_url u;
    struct rconn r;
    char url[400], err[256], reply[128], entry[200], more[32];
    const char *tail = "); check that the sentinels run and monitor m";
    int port[N], i, shown = 0;
    size_t len;
    pid_t pid[N];

    /* 80 bytes each, as odd_answer quotes at most */
    for (i = 0; i < N; i++) {
        snprintf(reply, sizeof reply, "+sentinel-%d-%.70s\r\n", i,
                 "says-something-long-enough-to-fill-the-eighty-bytes-that-are-quoted-xxxxxxxxx");
        pid[i] = fake_sentinel(&port[i], reply);
    }
    len = (size_t)snprintf(url, sizeof url, "redis+sentinel://");
    for (i = 0; i < N; i++)
        len +=
            (size_t)snprintf(url + len, sizeof url - len, "%s127.0.0.1:%d", i ? "," : "", port[i]);
    snprintf(url + len, sizeof url - len, "/m");
    REQUIRE(parse(url, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 2.0);
    CHECK_EQ(rconn_connect(&r), -1);
    len = strlen(r.errstr);
    CHECK(len < sizeof r.errstr - 1); /* not cut */
    CHECK(len > strlen(tail) && strcmp(r.errstr + len - strlen(tail), tail) == 0);
    for (i = 0; i < N; i++) {
        snprintf(entry, sizeof entry, "127.0.0.1:%d: answered 'sentinel-%d-", port[i], i);
        if (strstr(r.errstr, entry) == NULL) break;
        shown++;
    }
    CHECK(shown >= 3);
    CHECK(shown < N);
    snprintf(more, sizeof more, "; and %d more)", N - shown);
    CHECK_HAS(r.errstr, more);
    rconn_close(&r);
    for (i = 0; i < N; i++) {
        kill(pid[i], SIGKILL);
        waitpid(pid[i], NULL, 0);
    }

    /* Two, the first answering an error longer than the line by itself (h34's review: the
     * line was cut at 511 bytes inside it, without the count or the advice): it is cut,
     * "...", and the count and the advice follow. */
    {
        char longreply[600];
        snprintf(longreply, sizeof longreply, "-ERR sentinel-0 %0480d\r\n", 0);
        pid[0] = fake_sentinel(&port[0], longreply);
        pid[1] = fake_sentinel(&port[1], "+sentinel-1\r\n");
        snprintf(url, sizeof url, "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/m", port[0], port[1]);
        REQUIRE(parse(url, &u, err, sizeof err) == 0);
        rconn_init(&r, &u, 2.0);
        CHECK_EQ(rconn_connect(&r), -1);
        len = strlen(r.errstr); /* the line fills errstr: its end says it was not cut */
        CHECK(len > strlen(tail) && strcmp(r.errstr + len - strlen(tail), tail) == 0);
        CHECK_HAS(r.errstr, "sentinel-0 000");
        CHECK_HAS(r.errstr, "000...; and 1 more)");
        rconn_close(&r);
        for (i = 0; i < 2; i++) {
            kill(pid[i], SIGKILL);
            waitpid(pid[i], NULL, 0);
        }
    }
}

/* A worker's registered connections against CLIENT LIST's text (worker.c's find_gone,
 * admin.c's cqctl cancel): any one listed means it lives; an id is a whole field. */
static void test_clients_listed(void)
{
    const char *list = "id=7 addr=127.0.0.1:5000 name= cmd=blmove\n"
                       "id=123 addr=127.0.0.1:5001 name= cmd=client|list\n";

    CHECK_EQ(rconn_clients_listed(list, "7"), 1);       /* the first line */
    CHECK_EQ(rconn_clients_listed(list, "123"), 1);     /* a later line */
    CHECK_EQ(rconn_clients_listed(list, "9,8,123"), 1); /* one of several */
    CHECK_EQ(rconn_clients_listed(list, "12"), 0);      /* not a prefix of 123 */
    CHECK_EQ(rconn_clients_listed(list, "23"), 0);      /* nor a suffix */
    CHECK_EQ(rconn_clients_listed(list, "9,8"), 0);     /* none */
    CHECK_EQ(rconn_clients_listed(list, ""), 0);        /* nothing registered */
    CHECK_EQ(rconn_clients_listed("", "7"), 0);         /* nobody connected */
}

int main(void)
{
    struct rconn_url u;
    struct rconn r;
    char err[256];
    double d;
    long v;
    long long sz;

    CHECK(parse("redis://127.0.0.1:6380", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.host, "127.0.0.1");
    CHECK(u.port == 6380 && u.db == 0 && u.user[0] == '\0' && u.pass[0] == '\0');
    CHECK(parse("redis://localhost", &u, err, sizeof err) == 0);
    CHECK(u.port == 6379);
    CHECK(parse("redis://:secret@h:1/3", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.pass, "secret");
    CHECK(u.user[0] == '\0' && u.db == 3 && u.port == 1);
    CHECK(parse("redis://cq-worker:p%40ss%3Aword@h/2", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.user, "cq-worker");
    CHECK_STREQ(u.pass, "p@ss:word");
    CHECK(u.db == 2);
    CHECK(parse("redis://secret@h", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.pass, "secret");
    CHECK(parse("redis://[::1]:7000/1", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.host, "::1");
    CHECK(u.port == 7000 && u.db == 1);
    CHECK(parse("unix:///run/redis.sock?db=4", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.unix_path, "/run/redis.sock");
    CHECK(u.db == 4);

    CHECK(parse("http://h", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "must start with redis://");
    CHECK(parse("redis://h:99999", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "port");
    CHECK(parse("redis://h:x", &u, err, sizeof err) == -1);
    CHECK(parse("redis://h/abc", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "database 'abc'");
    CHECK(parse("redis://u:%zz@h", &u, err, sizeof err) == -1);
    CHECK(parse("unix://relative.sock", &u, err, sizeof err) == -1);
    /* unix:// takes a password (and a user) before the path, as redis:// before the host. */
    CHECK(parse("unix://:s3cr3t@/run/redis.sock?db=2", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.unix_path, "/run/redis.sock");
    CHECK_STREQ(u.user, "");
    CHECK_STREQ(u.pass, "s3cr3t");
    CHECK(u.db == 2);
    CHECK(parse("unix://app:p%40ss@/run/r@dis.sock", &u, err, sizeof err) == 0);
    CHECK_STREQ(u.user, "app");
    CHECK_STREQ(u.pass, "p@ss");
    CHECK_STREQ(u.unix_path, "/run/r@dis.sock");
    CHECK(parse("unix:///run/a@b.sock", &u, err, sizeof err) == 0); /* an '@' in the path */
    CHECK_STREQ(u.unix_path, "/run/a@b.sock");
    CHECK_STREQ(u.pass, "");
    CHECK(parse("unix://u:s3cr3t@/run/redis.sock?db=x", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "'unix://u:***@/run/redis.sock?db=x'");
    CHECK(strstr(err, "s3cr3t") == NULL);
    CHECK(parse("unix://:s3cr3t@relative.sock", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "'unix://:***@relative.sock'");
    CHECK(strstr(err, "s3cr3t") == NULL);
    /* A message may go to a log or a web page: a password in the URL shows as ***. */
    CHECK(parse("redis://u:s3cr3t@h:99999/0", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "'redis://u:***@h:99999/0'");
    CHECK(strstr(err, "s3cr3t") == NULL);
    CHECK(parse("redis://s3cr3t@h/x", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "'redis://***@h/x'");
    CHECK(parse("redis+sentinel://:s3cr3t@s1/m/x?replicas=1", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "'redis+sentinel://:***@s1/m/x?replicas=1'");
    CHECK(parse("redis://:s3cr3t@h/1?replicas=x", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "'redis://:***@h/1?replicas=x'");

    /* rediss://: TLS, its files from the environment. */
    setenv("CQ_TLS_CA", "/etc/cq/ca.pem", 1);
    CHECK(parse("rediss://u:p@cache.example:6380/2", &u, err, sizeof err) == 0);
    CHECK(u.tls == 1 && u.port == 6380 && u.db == 2);
    CHECK_STREQ(u.host, "cache.example");
    CHECK_STREQ(u.user, "u");
    CHECK_STREQ(u.tls_ca, "/etc/cq/ca.pem");
    CHECK(u.tls_cert[0] == '\0');
    unsetenv("CQ_TLS_CA");
    CHECK(parse("redis://h", &u, err, sizeof err) == 0);
    CHECK(u.tls == 0);

    /* redis+sentinel://: the sentinels (26379 by default), then the master's name and db. */
    CHECK(parse("redis+sentinel://:pw@10.0.0.1,10.0.0.2:26380,[::1]:5/mymaster/4", &u, err,
                sizeof err) == 0);
    CHECK(u.nsentinels == 3);
    CHECK_STREQ(u.sentinels[0].host, "10.0.0.1");
    CHECK(u.sentinels[0].port == 26379 && u.sentinels[1].port == 26380);
    CHECK_STREQ(u.sentinels[2].host, "::1");
    CHECK(u.sentinels[2].port == 5);
    CHECK_STREQ(u.master, "mymaster");
    CHECK_STREQ(u.pass, "pw");
    CHECK(u.db == 4);
    CHECK(parse("redis+sentinel://s1,s2/m?replicas=1", &u, err, sizeof err) == 0);
    CHECK(u.wait_replicas == 1 && u.nsentinels == 2);
    CHECK_STREQ(u.master, "m");
    CHECK(parse("redis://h:7/2?replicas=2", &u, err, sizeof err) == 0);
    CHECK(u.wait_replicas == 2 && u.db == 2 && u.port == 7);
    CHECK(parse("redis://h?replicas=x", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "?replicas=N");
    CHECK(parse("redis+sentinel://h1,h2", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "the master's name");
    CHECK(parse("redis+sentinel://h1:x/m", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "port");
    CHECK(parse("redis+sentinel://a,b,c,d,e,f,g,h,i/m", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "at most 8 sentinels");
    /* An empty entry is refused, not made 127.0.0.1:26379; a user without a password too,
     * which AUTH would drop (the connection then the default user's). */
    CHECK(parse("redis+sentinel://h1,,h2/m", &u, err, sizeof err) == -1);
    CHECK_STREQ(err,
                "redis URL 'redis+sentinel://h1,,h2/m': an empty sentinel address in "
                "the list");
    CHECK(parse("redis+sentinel://h1,/m", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "an empty sentinel address");
    CHECK(parse("redis+sentinel://,h1/m", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "an empty sentinel address");
    CHECK(parse("redis://app:@h", &u, err, sizeof err) == -1);
    CHECK_STREQ(err,
                "redis URL 'redis://app:***@h': a user name needs a password "
                "(USER:PASSWORD@)");
    CHECK(parse("unix://app:@/run/redis.sock", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "a user name needs a password");
    CHECK(parse("redis+sentinel://app:@s1/m", &u, err, sizeof err) == -1);
    CHECK_HAS(err, "a user name needs a password");
    CHECK(parse("redis://:@h", &u, err, sizeof err) == 0); /* neither: no AUTH, as before */
    CHECK(u.user[0] == '\0' && u.pass[0] == '\0');

    /* A closed port: one line naming the address, the cause and the fix. */
    CHECK(parse("redis://127.0.0.1:1", &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    CHECK(rconn_connect(&r) == -1);
    CHECK_STREQ(r.errstr,
                "redis 127.0.0.1:1: Connection refused; is redis-server running "
                "there? Start it, or point the URL at yours");
    CHECK(r.ctx == NULL);
    CHECK(rconn_commandf(&r, "PING") == NULL);
    rconn_close(&r);
    /* The fix names what set the URL, and no option: a program linking libcq has no --url. */
    setenv("CQ_REDIS_URL", "redis://127.0.0.1:1", 1);
    CHECK(rconn_parse_default_url(NULL, &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    CHECK(rconn_connect(&r) == -1);
    CHECK_STREQ(r.errstr,
                "redis 127.0.0.1:1: Connection refused; is redis-server running "
                "there? Start it, or point $CQ_REDIS_URL at yours");
    rconn_close(&r);
    CHECK(rconn_parse_default_url("unix:///nonexistent/redis.sock", &u, err, sizeof err) == 0);
    rconn_init(&r, &u, 1.0);
    CHECK(rconn_connect(&r) == -1);
    CHECK_STREQ(r.errstr,
                "redis /nonexistent/redis.sock: No such file or directory; is redis-server "
                "running there? Start it, or point the URL at yours");
    rconn_close(&r);
    unsetenv("CQ_REDIS_URL");
    CHECK(rconn_parse_default_url(NULL, &u, err, sizeof err) == 0);
    u.port = 1; /* the default URL, at a port where nothing listens */
    rconn_init(&r, &u, 1.0);
    CHECK(rconn_connect(&r) == -1);
    CHECK_STREQ(r.errstr,
                "redis 127.0.0.1:1: Connection refused; is redis-server running "
                "there? Start it, or point $CQ_REDIS_URL at yours");
    rconn_close(&r);
    /* To cq's commands (audience.h), whose -u changes it too. */
    cq_private_set_audience(AUDIENCE_COMMANDS);
    CHECK(rconn_connect(&r) == -1);
    CHECK_STREQ(r.errstr,
                "redis 127.0.0.1:1: Connection refused; is redis-server running "
                "there? Start it, or give the URL of yours (-u URL, or $CQ_REDIS_URL)");
    rconn_close(&r);
    cq_private_set_audience(AUDIENCE_PROGRAM);

    setenv("CQ_REDIS_URL", "redis://example:1", 1);
    CHECK_STREQ(rconn_default_url(NULL), "redis://example:1");
    CHECK_STREQ(rconn_default_url("redis://given"), "redis://given");
    unsetenv("CQ_REDIS_URL");
    CHECK_STREQ(rconn_default_url(NULL), "redis://127.0.0.1:6379");

    /* A bad URL from the environment names the variable (the user gave none); a given one
     * does not; a message too long for err keeps the name and loses its end. */
    setenv("CQ_REDIS_URL", "localhost:6379", 1);
    CHECK(rconn_parse_default_url(NULL, &u, err, sizeof err) == -1);
    CHECK_STREQ(err,
                "$CQ_REDIS_URL: redis URL 'localhost:6379': must start with redis://, "
                "rediss:// (TLS), redis+sentinel:// or unix://");
    CHECK(rconn_parse_default_url("", &u, err, sizeof err) == -1);
    CHECK(strncmp(err, "$CQ_REDIS_URL: ", 15) == 0);
    CHECK(rconn_parse_default_url("localhost:1", &u, err, sizeof err) == -1);
    CHECK(strncmp(err, "redis URL 'localhost:1'", 23) == 0);
    {
        char small[24];
        CHECK(rconn_parse_default_url(NULL, &u, small, sizeof small) == -1);
        CHECK_STREQ(small, "$CQ_REDIS_URL: redis UR");
    }
    setenv("CQ_REDIS_URL", "redis://127.0.0.1:7000/2", 1);
    CHECK(rconn_parse_default_url(NULL, &u, err, sizeof err) == 0);
    CHECK(u.port == 7000 && u.db == 2);
    unsetenv("CQ_REDIS_URL");

    /* Requests formatted in RESP into one buffer: as many commands as were put, each an
     * array of bulk strings (binary-safe, lengths of any number of digits, empty ones). */
    {
        struct rconn_buf b = {0};
        char big[1000];
        const char *want = "*2\r\n$4\r\nLLEN\r\n$1\r\nq\r\n"
                           "*3\r\n$4\r\nECHO\r\n$0\r\n\r\n$4\r\na\r\nb\r\n";
        memset(big, 'x', sizeof big);
        rconn_buf_array(&b, 2);
        rconn_buf_str(&b, "LLEN");
        rconn_buf_str(&b, "q");
        rconn_buf_array(&b, 3);
        rconn_buf_str(&b, "ECHO");
        rconn_buf_arg(&b, "", 0);
        rconn_buf_arg(&b, "a\r\nb", 4);
        CHECK_EQ(b.len, strlen(want));
        CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
        b.len = 0;
        rconn_buf_array(&b, 12);
        rconn_buf_arg(&b, big, sizeof big);
        CHECK(b.len == 5 + 7 + 1000 + 2 && memcmp(b.data, "*12\r\n$1000\r\nxx", 14) == 0);
        CHECK(memcmp(b.data + b.len - 3, "x\r\n", 3) == 0);
        rconn_buf_free(&b);
        CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    }

    /* The parsers behind every command's options. */
    CHECK(parse_duration("30", &d) == 0 && d == 30);
    CHECK(parse_duration("250ms", &d) == 0 && d == 0.25);
    CHECK(parse_duration("5m", &d) == 0 && d == 300);
    CHECK(parse_duration("2h", &d) == 0 && d == 7200);
    CHECK(parse_duration("1.5s", &d) == 0 && d == 1.5);
    CHECK(parse_duration("-1", &d) == -1);
    CHECK(parse_duration("5x", &d) == -1);
    CHECK(parse_duration("", &d) == -1);
    CHECK(parse_duration("inf", &d) == -1); /* fuzz/regress/parse */
    CHECK(parse_duration("Infinity", &d) == -1);
    CHECK(parse_duration("1e308h", &d) == -1);
    /* Decimal numbers only: strtod's other forms are refused. */
    {
        static const char *const odd[] = {"0x10", "0x10s", "inf",   "nan", "NAN",
                                          "1e3",  "1E3s",  "+5",    " 5",  "5.",
                                          ".5",   "1.5.2", "0x1p4", "5 ",  "1,5"};
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            d = -7;
            CHECK(parse_duration(odd[i], &d) == -1);
            CHECK(d == -7);
        }
    }
    CHECK(parse_duration("0.5", &d) == 0 && d == 0.5);
    CHECK(parse_duration("007s", &d) == 0 && d == 7);
    /* Leading zeros are decimal, as Go's time.ParseDuration and systemd read them, for every
     * option and setting (they all parse here): 010s is 10 s, not octal 8; a sign is not. */
    CHECK(parse_duration("00", &d) == 0 && d == 0);
    CHECK(parse_duration("010s", &d) == 0 && d == 10);
    CHECK(parse_duration("0010m", &d) == 0 && d == 600);
    CHECK(parse_duration("00.5s", &d) == 0 && d == 0.5);
    CHECK(parse_duration("0250ms", &d) == 0 && d == 0.25);
    CHECK(parse_duration("00036500d", &d) == 0 && d == DURATION_MAX);
    {
        char msg[128];
        CHECK(parse_duration_msg("0036501d", &d, msg, sizeof msg) == -1);
        CHECK_STREQ(msg, "'0036501d' is longer than 100 years");
        d = -7;
        CHECK(parse_duration_msg("-007s", &d, msg, sizeof msg) == -1 && d == -7);
        CHECK_STREQ(msg, "'-007s' is not a duration such as 250ms, 30s, 5m or 2h");
        CHECK(parse_duration_msg("0x07s", &d, msg, sizeof msg) == -1 && d == -7);
        CHECK_STREQ(msg, "'0x07s' is not a duration such as 250ms, 30s, 5m or 2h");
    }
    CHECK(parse_duration("1.25m", &d) == 0 && d == 75);
    CHECK(parse_duration("36500d", &d) == 0 && d == DURATION_MAX); /* 100 years */
    CHECK(parse_duration("36501d", &d) == -1);
    {
        char msg[128];
        CHECK(parse_duration_msg("36501d", &d, msg, sizeof msg) == -1);
        CHECK_STREQ(msg, "'36501d' is longer than 100 years");
        CHECK(parse_duration_msg("5x", &d, msg, sizeof msg) == -1);
        CHECK_STREQ(msg, "'5x' is not a duration such as 250ms, 30s, 5m or 2h");
    }
    CHECK(parse_long("42", 0, 100, &v) == 0 && v == 42);
    CHECK(parse_long("101", 0, 100, &v) == -1);
    CHECK(parse_long("4x", 0, 100, &v) == -1);
    CHECK(parse_long(" 4", 0, 100, &v) == -1);
    CHECK(parse_size("50M", &sz) == 0 && sz == 50LL * 1024 * 1024);
    CHECK(parse_size("512k", &sz) == 0 && sz == 512LL * 1024);
    CHECK(parse_size("100", &sz) == 0 && sz == 100);
    CHECK(parse_size("-1", &sz) == -1);
    CHECK(parse_size("1T", &sz) == -1);
    /* 1024's, however written: KiB, MiB and GiB as K, M and G (a MiB was refused) */
    CHECK(parse_size("1MiB", &sz) == 0 && sz == 1024LL * 1024);
    CHECK(parse_size("2KiB", &sz) == 0 && sz == 2048);
    CHECK(parse_size("1gib", &sz) == 0 && sz == 1024LL * 1024 * 1024);
    CHECK(parse_size("1KB", &sz) == 0 && sz == 1024);
    CHECK(parse_size("1iB", &sz) == -1);
    CHECK(parse_size("1Mi", &sz) == -1);
    test_password_chars();
    test_connect_signal(600);
    test_connect_signal(0);
    test_keepalive();
    test_sentinel_odd_answers();
    test_sentinel_many_answers();
    test_lost();
    test_connect_ipv6();
    test_resolve_deadline();
    test_clients_listed();
    return check_report();
}
