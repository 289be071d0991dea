/*
 * The POSIX port and runner against a real Mosquitto started on a free
 * loopback port: two devices in one process connect, publish retained
 * status/capabilities, answer a command, persist the discovery mode in their
 * state directories, and stop cleanly with "offline".
 *
 * Usage: test_posix /path/to/mosquitto
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mcp_port_posix.h"

static const char *s_mosquitto_bin;
static char s_dir[256];
static int s_port;
static pid_t s_broker;

/* ---- observer ------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    char topics[512][128];
    char payloads[512][256];
    bool retained[512];
    int n;
} seen_t;

static seen_t s_seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_msg(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    (void)ud;
    pthread_mutex_lock(&s_seen.mu);
    if (s_seen.n < 512) {
        snprintf(s_seen.topics[s_seen.n], sizeof s_seen.topics[0], "%s", msg->topic);
        int len = msg->payloadlen < 255 ? msg->payloadlen : 255;
        if (len > 0) {
            memcpy(s_seen.payloads[s_seen.n], msg->payload, (size_t)len);
        }
        s_seen.payloads[s_seen.n][len] = '\0';
        s_seen.retained[s_seen.n] = msg->retain;
        s_seen.n++;
    }
    pthread_mutex_unlock(&s_seen.mu);
}

/* index of the last message on topic whose payload contains needle (-1: none) */
static int find(const char *topic, const char *needle)
{
    int found = -1;
    pthread_mutex_lock(&s_seen.mu);
    for (int i = 0; i < s_seen.n; i++) {
        if (strcmp(s_seen.topics[i], topic) == 0 && (!needle || strstr(s_seen.payloads[i], needle))) {
            found = i;
        }
    }
    pthread_mutex_unlock(&s_seen.mu);
    return found;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* poll a condition (not a sleep as synchronisation: bounded wait for an event) */
static bool wait_for(const char *topic, const char *needle, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        if (find(topic, needle) >= 0) {
            return true;
        }
        sleep_ms(10);
    }
    return false;
}

/* ---- broker --------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int start_broker(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "%s/mcp_posix_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(s_dir)) {
        return -1;
    }
    s_port = free_port();
    char conf[300];
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", s_dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s", s_port,
            geteuid() == 0 ? "user root\n" : "");
    fclose(f);
    char log[300];
    snprintf(log, sizeof log, "%s/mosquitto.log", s_dir);
    s_broker = fork();
    if (s_broker < 0) {
        return -1;
    }
    if (s_broker == 0) {
        /* the broker never outlives the test, and keeps its output to itself */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(s_mosquitto_bin, s_mosquitto_bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    for (int t = 0; t < 5000; t += 20) {
        if (port_open(s_port)) {
            return 0;
        }
        sleep_ms(20);
    }
    return -1;
}

static int stop_broker(void **state)
{
    (void)state;
    kill(s_broker, SIGTERM);
    waitpid(s_broker, NULL, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- devices -------------------------------------------------------------- */

static esp_err_t read_temp(const char *id, mcp_value_t *v, int *quality, void *ud)
{
    (void)id;
    (void)ud;
    (void)quality;
    v->number = 21.5;
    return ESP_OK;
}

typedef struct {
    mcp_posix_device_t *devs[2];
    volatile sig_atomic_t stop;
    esp_err_t result;
} runner_t;

static void *run_thread(void *arg)
{
    runner_t *r = arg;
    r->result = mcp_posix_run(r->devs, 2, &r->stop);
    return NULL;
}

static void test_two_devices_on_a_real_broker(void **state)
{
    (void)state;
    mosquitto_lib_init();
    struct mosquitto *obs = mosquitto_new("observer", true, NULL);
    mosquitto_message_callback_set(obs, on_msg);
    assert_int_equal(mosquitto_connect(obs, "127.0.0.1", s_port, 30), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_subscribe(obs, NULL, "mcp_bridge/#", 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_subscribe(obs, NULL, "homeassistant/#", 1), MOSQ_ERR_SUCCESS);
    assert_int_equal(mosquitto_loop_start(obs), MOSQ_ERR_SUCCESS);

    char uri[64];
    snprintf(uri, sizeof uri, "mqtt://127.0.0.1:%d", s_port);
    runner_t r = {.stop = 0};
    for (int i = 0; i < 2; i++) {
        char id[32], dir[300];
        snprintf(id, sizeof id, "posix-%d", i + 1);
        snprintf(dir, sizeof dir, "%s/state-%d", s_dir, i + 1);
        mcp_bridge_config_t cfg = {.mqtt_broker_uri = uri, .device_id = id, .sensor_publish_interval_ms = 100};
        mcp_posix_options_t o = {.state_dir = dir, .log_level = MCP_LOG_WARN};
        assert_int_equal(mcp_posix_device_create(&cfg, &o, &r.devs[i]), ESP_OK);
        mcp_posix_device_lock(r.devs[i]);
        assert_int_equal(mcp_core_register_sensor(mcp_posix_device_core(r.devs[i]), "temperature", "temperature",
                                                  "°C", NULL, read_temp, NULL),
                         ESP_OK);
        mcp_actuator_metadata_t led = {.value_type = "boolean"};
        assert_int_equal(mcp_core_register_actuator(mcp_posix_device_core(r.devs[i]), "led", "led", &led, NULL, NULL),
                         ESP_OK);
        mcp_posix_device_unlock(r.devs[i]);
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, &r), 0);

    for (int i = 1; i <= 2; i++) {
        char t[80];
        snprintf(t, sizeof t, "mcp_bridge/posix-%d/status", i);
        assert_true(wait_for(t, "online", 5000));
        snprintf(t, sizeof t, "mcp_bridge/posix-%d/capabilities", i);
        assert_true(wait_for(t, "\"device_id\":\"posix-", 5000));
        snprintf(t, sizeof t, "mcp_bridge/posix-%d/sensors/temperature", i);
        assert_true(wait_for(t, "21.5", 5000));
    }
    assert_true(mcp_posix_device_connected(r.devs[0]));

    /* a command round trip and a persisted discovery mode switch */
    const char *cmd = "{\"id\":\"p-1\",\"cmd\":\"set_discovery\",\"args\":{\"mode\":\"integration\"}}";
    assert_int_equal(mosquitto_publish(obs, NULL, "mcp_bridge/posix-1/cmd", (int)strlen(cmd), cmd, 1, false),
                     MOSQ_ERR_SUCCESS);
    assert_true(wait_for("mcp_bridge/posix-1/response", "\"id\":\"p-1\",\"ok\":true", 5000));
    char path[400], buf[32] = "";
    snprintf(path, sizeof path, "%s/state-1/disc_mode", s_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "integration");
    const char *w = "{\"id\":\"p-2\",\"action\":\"write\",\"value\":true}";
    assert_int_equal(mosquitto_publish(obs, NULL, "mcp_bridge/posix-2/actuators/led/set", (int)strlen(w), w, 1, false),
                     MOSQ_ERR_SUCCESS);
    assert_true(wait_for("mcp_bridge/posix-2/response", "\"id\":\"p-2\",\"ok\":true", 5000));
    assert_true(wait_for("mcp_bridge/posix-2/actuators/led/state", "true", 5000));

    /* clean stop: "offline" from both, published by the devices themselves */
    r.stop = 1;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.result, ESP_OK);
    assert_true(wait_for("mcp_bridge/posix-1/status", "offline", 5000));
    assert_true(wait_for("mcp_bridge/posix-2/status", "offline", 5000));
    assert_false(mcp_posix_device_connected(r.devs[0]));

    /* a new device on the same state dir comes back in mode integration */
    mcp_posix_device_destroy(r.devs[0]);
    mcp_bridge_config_t cfg = {.mqtt_broker_uri = uri, .device_id = "posix-1"};
    char dir[300];
    snprintf(dir, sizeof dir, "%s/state-1", s_dir);
    mcp_posix_options_t o = {.state_dir = dir};
    mcp_posix_device_t *again;
    assert_int_equal(mcp_posix_device_create(&cfg, &o, &again), ESP_OK);
    assert_int_equal(mcp_core_get_discovery_mode(mcp_posix_device_core(again)), MCP_DISCOVERY_INTEGRATION);
    mcp_posix_device_destroy(again);
    mcp_posix_device_destroy(r.devs[1]);

    mosquitto_loop_stop(obs, true);
    mosquitto_destroy(obs);
    mosquitto_lib_cleanup();
}

static void test_bad_uri_and_options(void **state)
{
    (void)state;
    mcp_bridge_config_t cfg = {.mqtt_broker_uri = "http://127.0.0.1:1", .device_id = "posix-bad"};
    mcp_posix_device_t *d;
    assert_int_equal(mcp_posix_device_create(&cfg, NULL, &d), ESP_OK);
    assert_int_equal(mcp_posix_device_start(d), ESP_ERR_INVALID_ARG);
    mcp_posix_device_destroy(d);
    mcp_posix_options_t o = {.cert_file = "c.pem"}; /* a certificate without its key */
    assert_int_equal(mcp_posix_device_create(&cfg, &o, &d), ESP_ERR_INVALID_ARG);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s /path/to/mosquitto\n", argv[0]);
        return 2;
    }
    s_mosquitto_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_devices_on_a_real_broker),
        cmocka_unit_test(test_bad_uri_and_options),
    };
    return cmocka_run_group_tests(tests, start_broker, stop_broker);
}
