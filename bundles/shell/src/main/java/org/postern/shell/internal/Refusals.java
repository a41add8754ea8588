package org.postern.shell.internal;

import java.util.concurrent.Callable;

import org.apache.karaf.shell.support.CommandException;

/**
 * How the router's commands refuse: a check throws IllegalArgumentException (or IllegalStateException when a
 * service is missing) before anything changed, and the operator sees its message in red. As a CommandException,
 * Karaf logs it at debug: an operator's typo is not an error with a stack trace in karaf.log.
 */
final class Refusals {

    private Refusals() {
    }

    static Object said(Callable<Object> command) throws Exception {
        try {
            return command.call();
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new CommandException(e.getMessage());
        }
    }
}
