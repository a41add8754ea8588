package org.postern.shell.internal;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.Callable;

/** Small stand-ins for the framework: only the methods a test needs answer, others fail loudly. */
final class Fakes {

    private Fakes() {
    }

    interface Handler {
        Object answer(String method, Object[] args) throws Exception;
    }

    @SuppressWarnings("unchecked")
    static <T> T proxy(Class<T> type, Handler handler) {
        return (T) Proxy.newProxyInstance(Fakes.class.getClassLoader(), new Class<?>[] {type}, (p, method, args) -> {
            if (method.getName().equals("toString") && method.getParameterCount() == 0) {
                return type.getSimpleName() + " fake";
            }
            return handler.answer(method.getName(), args == null ? new Object[0] : args);
        });
    }

    /** A proxy answering from a map of method name to value. */
    static <T> T answering(Class<T> type, Map<String, Object> answers) {
        return proxy(type, (method, args) -> {
            if (!answers.containsKey(method)) {
                throw new UnsupportedOperationException(type.getSimpleName() + "." + method);
            }
            return answers.get(method);
        });
    }

    /** Runs a command and returns what it printed to System.out, as the Karaf console would show it. */
    static String stdout(Callable<?> action) throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
        try {
            action.call();
        } finally {
            System.setOut(saved);
        }
        return buffer.toString(StandardCharsets.UTF_8).replace("\r\n", "\n");
    }

    /** The cells of --no-format output, trimmed (ShellTable pads them even then). */
    static java.util.List<java.util.List<String>> rows(String output) {
        return output.lines().map(line -> java.util.Arrays.stream(line.split("\t", -1)).map(String::trim).toList())
                .toList();
    }
}
